//! CSV validator: any bytes against a fixed definition with every column
//! type, no panic; the verdict does not depend on how the input is split
//! into reads.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use veritrain_intake::csv::{CsvLimits, validate_csv};
use veritrain_intake::definition::{DefinitionLimits, parse_definition};

const DEFINITION: &str = "version: 1
type: csv
columns:
  - {name: id, type: string, input: false}
  - {name: x, type: float, nullable: true}
  - {name: n, type: int}
  - {name: flag, type: bool}
  - {name: color, type: category, values: [red, blue]}
  - {name: y, type: int}
label: {column: y, classes: [zero, one, two]}
input_shape: [4]
output_shape: [3]
";

/// Hands out at most 7 bytes per read.
struct Trickle<'a>(&'a [u8]);
impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        let (head, tail) = self.0.split_at(n);
        buf[..n].copy_from_slice(head);
        self.0 = tail;
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let def = parse_definition(DEFINITION.as_bytes(), &DefinitionLimits::default())
        .expect("the fixed definition is valid");
    let limits = CsvLimits::for_testing();
    let whole = validate_csv(data, &def, &limits);
    let trickled = validate_csv(Trickle(data), &def, &limits);
    match (whole, trickled) {
        (Ok(a), Ok(b)) => assert_eq!(a.columns, b.columns),
        (Err(a), Err(b)) => assert_eq!(a.finding(), b.finding()),
        (a, b) => panic!("split reads changed the verdict: {a:?} vs {b:?}"),
    }
});
