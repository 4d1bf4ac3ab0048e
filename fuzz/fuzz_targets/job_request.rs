//! Job request (`job.yaml`) parser: any bytes, no panic; whatever parses
//! serializes to JSON that parses back to an equal request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veritrain_pipeline::JobRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = JobRequest::parse(data) {
        let json = serde_json::to_vec(&request).expect("a request serializes");
        let again = JobRequest::parse(&json).expect("a serialized request parses");
        assert_eq!(request, again);
    }
});
