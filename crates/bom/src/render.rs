//! Human views of an AIBoM: a model card for the terminal and a one-page
//! HTML report (`veritrain bom show`).
//!
//! Both are made from the same list of sections ([`card`]), read from the
//! BOM alone, so what a person reads is what the BOM says. Everything in a
//! BOM is untrusted text when the BOM comes from elsewhere: the terminal
//! view replaces control characters (no escape sequences reach the
//! terminal), and the HTML view escapes every value, carries a
//! Content-Security-Policy that allows no script and no network fetch, and
//! shows the training curves as an `<img>` data URI, where an SVG can run no
//! script.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::cdx::{
    Bom, Component, ComponentType, DataType, DatasetChoice, LicenseChoice, OrganizationalContact,
    OrganizationalEntity, Property, ResponsibleParty, TaskInput, property_values,
};
use crate::chart::xml_escape;
use crate::props;

/// One part of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Label-value rows.
    Rows(Vec<(String, String)>),
    /// A table.
    Table {
        /// Column titles.
        head: Vec<String>,
        /// Rows of cells.
        rows: Vec<Vec<String>>,
    },
    /// An embedded image (`contentType`, base64 content).
    Image {
        /// Its name.
        name: String,
        /// MIME type.
        content_type: String,
        /// Base64 content.
        base64: String,
    },
}

/// A titled section of the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Its title.
    pub title: String,
    /// Its content.
    pub blocks: Vec<Block>,
}

struct Rows(Vec<(String, String)>);

impl Rows {
    fn new() -> Self {
        Rows(Vec::new())
    }
    fn add(&mut self, label: &str, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.0.push((label.to_owned(), value));
        }
    }
    fn opt(&mut self, label: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.add(label, v);
        }
    }
    fn list(&mut self, label: &str, values: &[String]) {
        for v in values {
            self.add(label, v.as_str());
        }
    }
    fn block(self) -> Option<Block> {
        (!self.0.is_empty()).then_some(Block::Rows(self.0))
    }
}

fn prop<'a>(props: &'a [Property], name: &'a str) -> Option<&'a str> {
    property_values(props, name).next()
}

fn bytes_text(text: Option<&str>) -> Option<String> {
    let n: u64 = text?.parse().ok()?;
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    Some(if u == 0 {
        format!("{n} bytes")
    } else {
        format!(
            "{v:.1} {} ({n} bytes)",
            units.get(u).copied().unwrap_or("bytes")
        )
    })
}

fn seconds_text(text: Option<&str>) -> Option<String> {
    let s: f64 = text?.parse().ok()?;
    Some(if s >= 60.0 {
        format!("{s} s ({:.1} min)", s / 60.0)
    } else {
        format!("{s} s")
    })
}

fn contact_text(c: &OrganizationalContact) -> String {
    match (&c.name, &c.email) {
        (Some(n), Some(e)) => format!("{n} <{e}>"),
        (Some(n), None) => n.clone(),
        (None, Some(e)) => e.clone(),
        (None, None) => String::new(),
    }
}

fn org_text(o: &OrganizationalEntity) -> String {
    let mut s = o.name.clone().unwrap_or_default();
    for u in &o.url {
        s.push_str(&format!(" ({u})"));
    }
    for c in &o.contact {
        s.push_str(&format!(", contact {}", contact_text(c)));
    }
    s
}

fn party_text(p: &ResponsibleParty) -> String {
    match p {
        ResponsibleParty::Organization(o) => org_text(o),
        ResponsibleParty::Contact(c) => contact_text(c),
    }
}

fn licenses_text(l: &[LicenseChoice]) -> String {
    l.iter()
        .map(|l| match l {
            LicenseChoice::Expression { expression } => expression.clone(),
            LicenseChoice::License { license } => license
                .get("id")
                .or_else(|| license.get("name"))
                .and_then(|v| v.as_str())
                .unwrap_or("(licence object)")
                .to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn find<'a>(bom: &'a Bom, bom_ref: &str) -> Option<&'a Component> {
    fn walk<'a>(list: &'a [Component], r: &str) -> Option<&'a Component> {
        list.iter().find_map(|c| {
            if c.bom_ref.as_deref() == Some(r) {
                Some(c)
            } else {
                walk(&c.components, r)
            }
        })
    }
    walk(&bom.components, bom_ref)
}

fn subject(bom: &Bom) -> Option<&Component> {
    bom.metadata
        .as_ref()
        .and_then(|m| m.component.as_deref())
        .or_else(|| {
            bom.components
                .iter()
                .find(|c| c.component_type == ComponentType::MachineLearningModel)
        })
}

/// The sections of the model card, in reading order.
pub fn card(bom: &Bom) -> Vec<Section> {
    let mut out = Vec::new();
    let mut push = |title: &str, blocks: Vec<Option<Block>>| {
        let blocks: Vec<Block> = blocks.into_iter().flatten().collect();
        if !blocks.is_empty() {
            out.push(Section {
                title: title.to_owned(),
                blocks,
            });
        }
    };
    let model = subject(bom);
    let mc = model.and_then(|m| m.model_card.as_ref());
    let params = mc.and_then(|c| c.model_parameters.as_ref());
    let cons = mc.and_then(|c| c.considerations.as_ref());

    // ----- identity
    let mut r = Rows::new();
    if let Some(m) = model {
        r.add("Name", m.name.as_str());
        r.opt("Version", m.version.as_deref());
        r.opt("Description", m.description.as_deref());
        for a in &m.authors {
            r.add("Author", contact_text(a));
        }
        r.add("Licence", licenses_text(&m.licenses));
        r.opt("SHA-256", m.sha256());
        r.opt("File", prop(&m.properties, props::FILE_NAME));
        if let Some(s) = bytes_text(prop(&m.properties, props::FILE_SIZE)) {
            r.add("Size", s);
        }
        for part in &m.components {
            if let Some(h) = part.sha256() {
                r.add(&format!("{} SHA-256", part.name), h);
            }
        }
        r.opt("Parameters", prop(&m.properties, props::MODEL_PARAM_COUNT));
        r.opt("Keras", prop(&m.properties, props::MODEL_KERAS_VERSION));
        r.add("Tags", m.tags.join(", "));
        for a in m.pedigree.iter().flat_map(|p| p.ancestors.iter()) {
            r.add(
                "Derived from",
                format!(
                    "{} (SHA-256 {})",
                    a.name,
                    a.sha256().unwrap_or("not recorded")
                ),
            );
        }
    }
    if let Some(p) = params {
        r.opt("Task", p.task.as_deref());
        r.opt(
            "Approach",
            p.approach.and_then(|a| a.approach).map(|a| a.as_str()),
        );
        r.opt("Architecture family", p.architecture_family.as_deref());
        r.opt("Architecture", p.model_architecture.as_deref());
        for i in &p.inputs {
            r.opt("Input", i.format.as_deref());
        }
        for o in &p.outputs {
            r.opt("Output", o.format.as_deref());
        }
        for d in &p.datasets {
            match d {
                DatasetChoice::Ref { reference } => r.add("Trained on", reference.as_str()),
                DatasetChoice::Inline(d) => r.opt("Trained on", d.name.as_deref()),
            }
        }
    }
    push("Model", vec![r.block()]);

    // ----- intended use
    let mut r = Rows::new();
    if let Some(c) = cons {
        r.list("Intended user", &c.users);
        r.list("Use case", &c.use_cases);
        r.list("Out of scope", &c.technical_limitations);
        r.list("Trade-off", &c.performance_tradeoffs);
        for e in &c.ethical_considerations {
            let mut s = e.name.clone().unwrap_or_default();
            if let Some(m) = &e.mitigation_strategy {
                s.push_str(&format!(" (mitigation: {m})"));
            }
            r.add("Misuse risk", s);
        }
        for f in &c.fairness_assessments {
            let mut s = f.group_at_risk.clone().unwrap_or_default();
            for (label, v) in [
                ("benefits", &f.benefits),
                ("harms", &f.harms),
                ("mitigation", &f.mitigation_strategy),
            ] {
                if let Some(v) = v {
                    s.push_str(&format!("; {label}: {v}"));
                }
            }
            r.add("Fairness", s);
        }
    }
    push("Intended use", vec![r.block()]);

    // ----- metrics
    let qa = mc.and_then(|c| c.quantitative_analysis.as_ref());
    let metric_rows: Vec<Vec<String>> = qa
        .map(|q| {
            q.performance_metrics
                .iter()
                .map(|m| {
                    vec![
                        m.metric_type.clone().unwrap_or_default(),
                        m.slice.clone().unwrap_or_default(),
                        m.value.clone().unwrap_or_default(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let table = (!metric_rows.is_empty()).then(|| Block::Table {
        head: vec!["metric".into(), "slice".into(), "value".into()],
        rows: metric_rows,
    });
    let mut r = Rows::new();
    if let Some(env) = cons.and_then(|c| c.environmental_considerations.as_ref()) {
        r.opt("Epochs", prop(&env.properties, props::TRAINING_EPOCHS));
        if let Some(s) = seconds_text(prop(&env.properties, props::TRAINING_WALL)) {
            r.add("Training wall time", s);
        }
        if let Some(s) = seconds_text(prop(&env.properties, props::TRAINING_CPU)) {
            r.add("Training CPU time", s);
        }
        if let Some(s) = seconds_text(prop(&env.properties, props::TRAINING_GPU)) {
            r.add("Training GPU time", s);
        }
        for e in &env.energy_consumptions {
            r.add(
                "Energy",
                format!(
                    "{} {} ({})",
                    e.activity_energy_cost.value, e.activity_energy_cost.unit, e.activity
                ),
            );
        }
    }
    let images = qa
        .and_then(|q| q.graphics.as_ref())
        .into_iter()
        .flat_map(|g| g.collection.iter())
        .filter_map(|gr| {
            let img = gr.image.as_ref()?;
            (img.encoding.as_deref() == Some("base64")).then(|| {
                Some(Block::Image {
                    name: gr.name.clone().unwrap_or_default(),
                    content_type: img.content_type.clone().unwrap_or_default(),
                    base64: img.content.clone(),
                })
            })
        });
    let mut blocks = vec![table, r.block()];
    blocks.extend(images);
    push("Metrics", blocks);

    // ----- fit parameters
    let train = bom
        .formulation
        .iter()
        .flat_map(|f| f.workflows.iter())
        .flat_map(|w| w.tasks.iter())
        .find(|t| t.uid == "train");
    if let Some(t) = train {
        let types: Vec<(String, String)> = t
            .inputs
            .iter()
            .filter_map(|i| match i {
                TaskInput::Parameters(ps) => Some(ps),
                TaskInput::Resource(_) => None,
            })
            .flatten()
            .filter_map(|p| Some((p.name.clone()?, p.data_type.clone().unwrap_or_default())))
            .collect();
        let rows: Vec<Vec<String>> = t
            .properties
            .iter()
            .filter_map(|p| {
                let name = if let Some(n) = p.name.strip_prefix(props::FIT_PREFIX) {
                    n.to_owned()
                } else if let Some(n) = p.name.strip_prefix(props::COMPILE_PREFIX) {
                    format!("compile.{n}")
                } else if let Some(n) = p.name.strip_prefix(props::SPLIT_PREFIX) {
                    format!("split.{n}")
                } else if p.name == props::TRAINING_STEPS {
                    "steps_run".to_owned()
                } else {
                    return None;
                };
                let name = name.as_str();
                let ty = types
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_default();
                Some(vec![
                    name.to_owned(),
                    p.value.clone().unwrap_or_default(),
                    ty,
                ])
            })
            .collect();
        let mut r = Rows::new();
        r.opt("Started", t.time_start.as_deref());
        r.opt("Ended", t.time_end.as_deref());
        push(
            "Training run",
            vec![
                r.block(),
                (!rows.is_empty()).then(|| Block::Table {
                    head: vec!["parameter".into(), "value".into(), "type".into()],
                    rows,
                }),
            ],
        );
    }

    // ----- datasets
    for c in bom.components.iter().filter(|c| {
        c.component_type == ComponentType::Data
            && c.data.iter().any(|d| d.data_type == DataType::Dataset)
    }) {
        let mut r = Rows::new();
        r.opt("Description", c.description.as_deref());
        r.opt("Kind", prop(&c.properties, props::DATASET_KIND));
        r.opt("Files", prop(&c.properties, props::DATASET_FILE_COUNT));
        if let Some(s) = bytes_text(prop(&c.properties, props::DATASET_SIZE)) {
            r.add("Size", s);
        }
        r.opt("Upload", prop(&c.properties, props::FILE_NAME));
        r.opt("Upload SHA-256", c.sha256());
        r.opt(
            "Manifest root",
            prop(&c.properties, props::DATASET_MANIFEST_ROOT),
        );
        r.opt(
            "Manifest",
            prop(&c.properties, props::DATASET_MANIFEST_FILE),
        );
        r.opt(
            "Manifest SHA-256",
            prop(&c.properties, props::DATASET_MANIFEST_SHA),
        );
        let classes: Vec<&str> = c.property_values(props::DATASET_CLASS).collect();
        r.add("Classes", classes.join(", "));
        r.add("Licence", licenses_text(&c.licenses));
        r.opt("Source", prop(&c.properties, props::DATASET_SOURCE));
        for d in &c.data {
            r.opt("Classification", d.classification.as_deref());
            r.list("Sensitive data", &d.sensitive_data);
            if let Some(g) = &d.governance {
                for (label, list) in [
                    ("Owner", &g.owners),
                    ("Custodian", &g.custodians),
                    ("Steward", &g.stewards),
                ] {
                    for p in list {
                        r.add(label, party_text(p));
                    }
                }
            }
            for p in d.contents.iter().flat_map(|c| c.properties.iter()) {
                if let Some(k) = p.name.strip_prefix(props::STATS_PREFIX) {
                    r.add(&format!("stats {k}"), p.value.clone().unwrap_or_default());
                }
            }
        }
        push(&format!("Dataset {}", c.name), vec![r.block()]);
    }

    // ----- base model and definition
    if let Some(b) = find(bom, crate::build::refs::BASE_MODEL) {
        let mut r = Rows::new();
        r.add("Name", b.name.as_str());
        r.opt("Version", b.version.as_deref());
        r.opt("SHA-256", b.sha256());
        r.opt("File", prop(&b.properties, props::FILE_NAME));
        r.opt("Source", prop(&b.properties, props::BASE_SOURCE));
        r.opt(
            "Scanner accepted",
            prop(&b.properties, props::SCAN_ACCEPTED),
        );
        r.opt("Allow-list", prop(&b.properties, props::SCAN_ALLOWLIST));
        r.opt("Keras", prop(&b.properties, props::SCAN_KERAS_VERSION));
        r.opt("Saved", prop(&b.properties, props::SCAN_DATE_SAVED));
        r.opt("Layers", prop(&b.properties, props::SCAN_LAYER_COUNT));
        r.opt("Parameters", prop(&b.properties, props::SCAN_PARAM_COUNT));
        r.opt("Findings", prop(&b.properties, props::SCAN_FINDING_COUNT));
        for f in b.property_values(props::SCAN_FINDING) {
            r.add("Finding", f);
        }
        push("Base model", vec![r.block()]);
    }
    if let Some(d) = find(bom, crate::build::refs::DEFINITION) {
        let mut r = Rows::new();
        r.add("File", d.name.as_str());
        r.opt("SHA-256", d.sha256());
        push("Dataset definition", vec![r.block()]);
    }

    // ----- environment
    if let Some(rt) = find(bom, crate::build::refs::RUNTIME) {
        let mut r = Rows::new();
        let mut packages = Vec::new();
        for part in &rt.components {
            match part.component_type {
                ComponentType::Platform => {
                    r.add(&part.name, part.version.clone().unwrap_or_default())
                }
                ComponentType::OperatingSystem => {
                    let mut s =
                        format!("{} {}", part.name, part.version.clone().unwrap_or_default());
                    if let Some(k) = prop(&part.properties, props::OS_KERNEL) {
                        s.push_str(&format!(" (kernel {k})"));
                    }
                    r.add("OS", s);
                }
                ComponentType::Device => {
                    let mut s = part.name.clone();
                    if let Some(c) = prop(&part.properties, props::CPU_CORES_LIMIT) {
                        s.push_str(&format!(", {c} cores allowed"));
                    }
                    if let Some(c) = prop(&part.properties, props::CPU_HOST_LOGICAL) {
                        s.push_str(&format!(" of {c} on the host"));
                    }
                    if let Some(m) = bytes_text(prop(&part.properties, props::GPU_MEMORY)) {
                        s.push_str(&format!(", {m}"));
                    }
                    if let Some(d) = prop(&part.properties, props::GPU_DRIVER) {
                        s.push_str(&format!(", driver {d}"));
                    }
                    r.add("Device", s);
                }
                ComponentType::Library => packages.push(vec![
                    part.name.clone(),
                    part.version.clone().unwrap_or_default(),
                    part.sha256().unwrap_or_default().to_owned(),
                ]),
                _ => r.add("Component", part.name.as_str()),
            }
        }
        if let Some(m) = bytes_text(prop(&rt.properties, props::MEMORY_LIMIT)) {
            r.add("Memory allowed", m);
        }
        for p in &rt.properties {
            if let Some(k) = p.name.strip_prefix(props::SANDBOX_PREFIX) {
                r.add(&format!("sandbox {k}"), p.value.clone().unwrap_or_default());
            }
        }
        push(
            "Environment",
            vec![
                r.block(),
                (!packages.is_empty()).then(|| Block::Table {
                    head: vec!["package".into(), "version".into(), "wheel SHA-256".into()],
                    rows: packages,
                }),
            ],
        );
    }

    // ----- trust facts
    let mut r = Rows::new();
    if let Some(m) = &bom.metadata {
        r.opt("Made", m.timestamp.as_deref());
        for t in m.tools.iter().flat_map(|t| t.components.iter()) {
            r.add(
                "By",
                format!(
                    "{} {} (SHA-256 {})",
                    t.name,
                    t.version.clone().unwrap_or_default(),
                    t.sha256().unwrap_or("not recorded")
                ),
            );
        }
        if let Some(s) = &m.supplier {
            r.add("Supplier", org_text(s));
        }
        r.opt("Job", prop(&m.properties, props::JOB_ID));
    }
    r.opt("Serial number", bom.serial_number.as_deref());
    r.add("Spec", format!("CycloneDX {}", bom.spec_version));
    for (label, reference) in [
        ("veritrain binary", crate::build::refs::VERITRAIN),
        ("Trainer", crate::build::refs::TRAINER),
        ("Lock file", crate::build::refs::LOCK_FILE),
    ] {
        if let Some(c) = find(bom, reference) {
            r.add(
                label,
                format!(
                    "{}{} SHA-256 {}",
                    c.name,
                    c.version
                        .as_ref()
                        .map(|v| format!(" {v}"))
                        .unwrap_or_default(),
                    c.sha256().unwrap_or("not recorded")
                ),
            );
        }
    }
    let refs: Vec<Vec<String>> = bom
        .external_references
        .iter()
        .map(|e| {
            vec![
                e.reference_type.clone(),
                e.url.clone(),
                e.hashes
                    .iter()
                    .map(|h| format!("{} {}", h.alg, h.content))
                    .collect::<Vec<_>>()
                    .join(", "),
                e.comment.clone().unwrap_or_default(),
            ]
        })
        .collect();
    push(
        "Trust facts",
        vec![
            r.block(),
            (!refs.is_empty()).then(|| Block::Table {
                head: vec![
                    "type".into(),
                    "document".into(),
                    "digest".into(),
                    "what".into(),
                ],
                rows: refs,
            }),
        ],
    );
    out
}

/// Replace characters a terminal would act on (escape sequences, carriage
/// returns) and bidirectional overrides (which make text read differently
/// from what it is), so a hostile BOM cannot rewrite the screen or disguise
/// a value.
fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            let bidi = matches!(
                c,
                '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            );
            if (c.is_control() && c != '\n' && c != '\t') || bidi {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// The model card as plain text for a terminal.
pub fn render_text(bom: &Bom) -> String {
    let mut out = String::new();
    let title = subject(bom)
        .map(|m| format!("{} {}", m.name, m.version.clone().unwrap_or_default()))
        .unwrap_or_else(|| "(no subject component)".to_owned());
    let _ = writeln!(out, "AIBoM: {}", terminal_safe(title.trim()));
    for section in card(bom) {
        out.push_str(&section_text(&section));
    }
    out
}

/// One section of the card as terminal text (a `== title` line and its
/// rows or table).
pub fn section_text(section: &Section) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n== {}", terminal_safe(&section.title));
    for block in &section.blocks {
        match block {
            Block::Rows(rows) => {
                let width = rows
                    .iter()
                    .map(|(l, _)| l.chars().count())
                    .max()
                    .unwrap_or(0);
                for (label, value) in rows {
                    let value = terminal_safe(value).replace('\n', &format!("\n  {:width$}  ", ""));
                    let _ = writeln!(out, "  {:width$}  {}", terminal_safe(label), value);
                }
            }
            Block::Table { head, rows } => {
                let cols = head.len();
                let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
                for row in rows {
                    for (i, cell) in row.iter().enumerate().take(cols) {
                        if let Some(w) = widths.get_mut(i) {
                            *w = (*w).max(cell.chars().count());
                        }
                    }
                }
                let line = |cells: &[String], out: &mut String| {
                    let mut s = String::from(" ");
                    for (i, cell) in cells.iter().enumerate() {
                        let w = widths.get(i).copied().unwrap_or(0);
                        let cell = terminal_safe(cell).replace('\n', " ");
                        let _ = write!(s, " {cell:w$} ");
                    }
                    let _ = writeln!(out, "{}", s.trim_end());
                };
                line(head, &mut out);
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                line(&rule, &mut out);
                for row in rows {
                    line(row, &mut out);
                }
            }
            Block::Image {
                name, content_type, ..
            } => {
                let _ = writeln!(
                    out,
                    "  [{} {}: see `veritrain bom show --html`]",
                    terminal_safe(name),
                    terminal_safe(content_type)
                );
            }
        }
    }
    out
}

/// Image types the HTML report shows; anything else is listed, not shown.
const SHOWN_IMAGES: [&str; 3] = ["image/svg+xml", "image/png", "image/jpeg"];

/// The model card as one self-contained HTML page.
pub fn render_html(bom: &Bom) -> String {
    let e = |s: &str| xml_escape(s);
    let title = subject(bom)
        .map(|m| format!("{} {}", m.name, m.version.clone().unwrap_or_default()))
        .unwrap_or_else(|| "(no subject component)".to_owned());
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>AIBoM: {t}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
         <h1>AIBoM: {t}</h1>\n",
        t = e(title.trim())
    );
    for section in card(bom) {
        let _ = writeln!(h, "<section>\n<h2>{}</h2>", e(&section.title));
        for block in &section.blocks {
            match block {
                Block::Rows(rows) => {
                    h.push_str("<table class=\"rows\">\n");
                    for (label, value) in rows {
                        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", e(label), e(value));
                    }
                    h.push_str("</table>\n");
                }
                Block::Table { head, rows } => {
                    h.push_str("<table class=\"grid\">\n<tr>");
                    for c in head {
                        let _ = write!(h, "<th>{}</th>", e(c));
                    }
                    h.push_str("</tr>\n");
                    for row in rows {
                        h.push_str("<tr>");
                        for c in row {
                            let _ = write!(h, "<td>{}</td>", e(c));
                        }
                        h.push_str("</tr>\n");
                    }
                    h.push_str("</table>\n");
                }
                Block::Image {
                    name,
                    content_type,
                    base64,
                } => {
                    // Only well-formed base64 of a known image type goes into
                    // the data URI; in an <img>, an SVG runs no script.
                    let ok = SHOWN_IMAGES.contains(&content_type.as_str())
                        && STANDARD.decode(base64).is_ok();
                    if ok {
                        let _ = writeln!(
                            h,
                            "<figure><img alt=\"{n}\" src=\"data:{ct};base64,{b}\"><figcaption>{n}</figcaption></figure>",
                            n = e(name),
                            ct = e(content_type),
                            b = e(base64)
                        );
                    } else {
                        let _ = writeln!(
                            h,
                            "<p>Graphic {} ({}) not shown.</p>",
                            e(name),
                            e(content_type)
                        );
                    }
                }
            }
        }
        h.push_str("</section>\n");
    }
    h.push_str("<footer>Rendered by Veritrain from the AIBoM alone.</footer>\n</body>\n</html>\n");
    h
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;width:100%}
th,td{text-align:left;vertical-align:top;padding:.2rem .5rem;font-size:.9rem;overflow-wrap:anywhere}
table.rows th{width:14rem;color:#555;font-weight:600}
table.grid th{border-bottom:1px solid #999}table.grid td{border-bottom:1px solid #eee}
figure{margin:1rem 0}img{max-width:100%;border:1px solid #ddd}
footer{margin-top:2rem;color:#777;font-size:.8rem}
";
