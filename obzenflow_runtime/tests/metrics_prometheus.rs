//! The Prometheus exposition, checked line by line by a strict parser of the text format
//! (version 0.0.4): HELP and TYPE before samples, name and label charsets, label escaping,
//! numeric values, no duplicate series, histogram buckets monotonic up to `+Inf` == `_count`.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};

use obzenflow_core::ChainEvent;
use obzenflow_runtime::pipeline::{FlowBuilder, FlowState, Journals};
use obzenflow_runtime::stages::{RecordError, TransformHandler};
use support::{Collect, Numbers};

/// Label names and (unescaped) values, in order.
type Labels = Vec<(String, String)>;

/// One sample: its name, its labels and its value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A metric family as declared by its HELP and TYPE lines.
#[derive(Debug, Default)]
struct Family {
    help: bool,
    kind: Option<String>,
    closed: bool,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if text
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) =>
        {
            text.parse().map_err(|_| format!("bad value `{text}`"))
        }
        _ => Err(format!("bad value `{text}`")),
    }
}

/// Parses `{name="value",...}` starting after the `{`; returns the labels and the rest.
fn parse_labels(mut rest: &str) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        if !labels.is_empty() {
            rest = rest
                .strip_prefix(',')
                .ok_or("labels must be separated by commas")?;
        }
        let (name, after) = rest.split_once("=\"").ok_or("a label needs =\"")?;
        if !is_label_name(name) {
            return Err(format!("bad label name `{name}`"));
        }
        if labels.iter().any(|(seen, _)| seen == name) {
            return Err(format!("duplicate label `{name}`"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (index, '"') => break index,
                (_, '\\') => match chars.next().ok_or("dangling backslash")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape `\\{other}`")),
                },
                (_, '\n') => return Err("raw newline in a label value".to_owned()),
                (_, other) => value.push(other),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &after[end + 1..];
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name `{name}`"));
    }
    let (labels, rest) = match line[name_end..].strip_prefix('{') {
        Some(after) => parse_labels(after)?,
        None => (Vec::new(), &line[name_end..]),
    };
    let value = rest.strip_prefix(' ').ok_or("one space before the value")?;
    if value.contains(' ') {
        return Err("no timestamps are written".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value: parse_value(value)?,
    })
}

/// The family a sample belongs to: histograms own `_bucket`, `_sum` and `_count`.
fn family_of<'a>(name: &'a str, families: &HashMap<String, Family>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if families.get(base).and_then(|f| f.kind.as_deref()) == Some("histogram") {
                return base;
            }
        }
    }
    name
}

fn parse_comment(line: &str, families: &mut HashMap<String, Family>) -> Result<(), String> {
    let mut parts = line.splitn(4, ' ');
    let (Some("#"), Some(keyword), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a comment must be `# HELP` or `# TYPE`".to_owned());
    };
    if !is_metric_name(name) {
        return Err(format!("bad family name `{name}`"));
    }
    let text = parts.next().ok_or("HELP and TYPE need text")?;
    let family = families.entry(name.to_owned()).or_default();
    if family.closed {
        return Err(format!("`{name}` declared after its samples"));
    }
    match keyword {
        "HELP" if !family.help && family.kind.is_none() => {
            let mut chars = text.chars();
            while let Some(c) = chars.next() {
                if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                    return Err("bad escape in HELP".to_owned());
                }
            }
            family.help = true;
        }
        "TYPE" if family.kind.is_none() => {
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&text) {
                return Err(format!("bad type `{text}`"));
            }
            family.kind = Some(text.to_owned());
        }
        _ => return Err(format!("`{keyword}` of `{name}` repeated or out of order")),
    }
    Ok(())
}

/// Parses the whole exposition strictly; every sample belongs to a family declared before it
/// with HELP and TYPE, and a family's samples are contiguous.
fn parse(text: &str) -> Result<(Vec<Sample>, HashMap<String, Family>), String> {
    let body = text
        .strip_suffix('\n')
        .ok_or("the text must end with a newline")?;
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut samples = Vec::new();
    let mut series = HashSet::new();
    let mut current: Option<String> = None;
    for (number, line) in body.split('\n').enumerate() {
        let context = |error: String| format!("line {}: {error}: `{line}`", number + 1);
        if line.starts_with('#') {
            parse_comment(line, &mut families).map_err(context)?;
            continue;
        }
        let sample = parse_sample(line).map_err(context)?;
        let family = family_of(&sample.name, &families).to_owned();
        let declared = families
            .get(&family)
            .is_some_and(|f| f.help && f.kind.is_some());
        if !declared {
            return Err(context(format!("family `{family}` not declared first")));
        }
        if current.as_deref() != Some(family.as_str()) {
            if let Some(previous) = current.replace(family.clone()) {
                families.get_mut(&previous).unwrap().closed = true;
            }
        }
        let kind = families[&family].kind.clone().unwrap();
        if kind == "counter" && !(sample.value >= 0.0 && sample.value.is_finite()) {
            return Err(context(
                "a counter must be finite and non-negative".to_owned(),
            ));
        }
        if !series.insert(format!("{}{:?}", sample.name, sample.labels)) {
            return Err(context("duplicate series".to_owned()));
        }
        samples.push(sample);
    }
    Ok((samples, families))
}

/// Checks every histogram series: `le` ascending, counts non-decreasing, `+Inf` last and
/// equal to `_count`, `_sum` present.
fn check_histograms(samples: &[Sample], families: &HashMap<String, Family>) {
    let histograms = families
        .iter()
        .filter(|(_, family)| family.kind.as_deref() == Some("histogram"));
    for (name, _) in histograms {
        let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts: HashMap<String, f64> = HashMap::new();
        let mut sums: HashSet<String> = HashSet::new();
        for sample in samples.iter().filter(|s| s.name.starts_with(name.as_str())) {
            let key: Vec<_> = sample.labels.iter().filter(|(l, _)| l != "le").collect();
            let key = format!("{key:?}");
            if sample.name == format!("{name}_bucket") {
                let le = parse_value(sample.label("le").expect("a bucket has le")).unwrap();
                buckets.entry(key).or_default().push((le, sample.value));
            } else if sample.name == format!("{name}_count") {
                counts.insert(key, sample.value);
            } else if sample.name == format!("{name}_sum") {
                sums.insert(key);
            }
        }
        assert!(!buckets.is_empty(), "histogram {name} has no series");
        for (key, series) in &buckets {
            for pair in series.windows(2) {
                assert!(pair[0].0 < pair[1].0, "{name}{key}: le not ascending");
                assert!(pair[0].1 <= pair[1].1, "{name}{key}: counts decrease");
            }
            let (last_le, last_count) = *series.last().unwrap();
            assert_eq!(last_le, f64::INFINITY, "{name}{key}: +Inf is not last");
            assert_eq!(
                Some(&last_count),
                counts.get(key),
                "{name}{key}: +Inf != _count"
            );
            assert!(sums.contains(key), "{name}{key}: no _sum");
        }
    }
}

/// Fails every third record, so error kinds and both lanes show up.
struct EveryThird;

impl TransformHandler for EveryThird {
    fn process(&mut self, event: &ChainEvent) -> Result<Vec<ChainEvent>, RecordError> {
        let n = event.json().and_then(|payload| payload["n"].as_u64());
        if n.is_some_and(|n| n % 3 == 0) {
            return Err(RecordError::validation("a multiple of three"));
        }
        Ok(vec![event.clone()])
    }
}

#[test]
fn the_parser_rejects_what_the_format_forbids() {
    for bad in [
        "# TYPE a counter\na 1\n",
        "# HELP a x\na 1\n",
        "# HELP a x\n# TYPE a counter\na{b=\"c\\t\"} 1\n",
        "# HELP a x\n# TYPE a counter\na{b=\"c\"} one\n",
        "# HELP a x\n# TYPE a counter\na{1b=\"c\"} 1\n",
        "# HELP a x\n# TYPE a counter\na 1\na 2\n",
        "# HELP a x\n# TYPE a counter\na -1\n",
        "# HELP a x\n# TYPE a counter\na 1",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
    let good = "# HELP a x\n# TYPE a counter\na{b=\"q\\\"\\\\\\n\"} 1\n";
    let (samples, _) = parse(good).unwrap();
    assert_eq!(samples[0].label("b"), Some("q\"\\\n"));
}

/// The values a flow of 300 records through `transform` (failing every third) must show.
fn assert_values(samples: &[Sample], transform: &str) {
    let value = |name: &str, stage: &str, extra: Option<(&str, &str)>| -> f64 {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.label("stage") == Some(stage)
                    && extra.is_none_or(|(label, value)| s.label(label) == Some(value))
            })
            .unwrap_or_else(|| panic!("no {name} for {stage}"))
            .value
    };
    assert_eq!(
        value("obzenflow_stage_records_in_total", transform, None),
        300.0
    );
    assert_eq!(
        value("obzenflow_stage_records_out_total", transform, None),
        200.0
    );
    let errored = "obzenflow_stage_records_errored_total";
    assert_eq!(
        value(errored, transform, Some(("error_kind", "validation"))),
        100.0
    );
    assert_eq!(
        value(errored, transform, Some(("error_kind", "decode"))),
        0.0
    );
    let histogram_count = "obzenflow_stage_processing_time_seconds_count";
    assert_eq!(value(histogram_count, transform, None), 300.0);
    let state = "obzenflow_stage_state";
    assert_eq!(value(state, "collect", Some(("state", "drained"))), 1.0);
    assert_eq!(value(state, "collect", Some(("state", "running"))), 0.0);
    let lag = "obzenflow_edge_lag_records";
    assert_eq!(value(lag, "collect", Some(("upstream", transform))), 0.0);
    assert_eq!(value(lag, "collect", Some(("lane", "data"))), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_of_a_finished_flow_parses_strictly() {
    // Names that need escaping: a quote, a backslash and a newline.
    let flow_name = "orders \"eu\"\\west\nnight";
    let transform = "check \"n\"";
    let report = FlowBuilder::new(flow_name)
        .source("numbers", Numbers::new("numbers", 300))
        .transform(transform, EveryThird)
        .sink("collect", Collect::default())
        .chain(["numbers", transform, "collect"])
        .journals(Journals::memory())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    let text = report.prometheus();
    let (samples, families) = parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    check_histograms(&samples, &families);

    for (name, family) in &families {
        assert!(name.starts_with("obzenflow_"), "{name}");
        assert!(family.help && family.kind.is_some(), "{name}");
        if name.ends_with("_total") {
            assert_eq!(family.kind.as_deref(), Some("counter"), "{name}");
        }
    }
    for sample in &samples {
        assert_eq!(sample.label("flow"), Some(flow_name), "{sample:?}");
        if sample.name.starts_with("obzenflow_stage_") || sample.name.starts_with("obzenflow_edge_")
        {
            assert!(sample.label("stage").is_some() && sample.label("stage_kind").is_some());
        }
    }
    assert_values(&samples, transform);
    let kinds: HashSet<&str> = samples
        .iter()
        .filter_map(|s| s.label("stage_kind"))
        .collect();
    assert_eq!(kinds, HashSet::from(["source", "transform", "sink"]));
    assert!(samples
        .iter()
        .any(|s| s.name == "obzenflow_flow_final" && s.value == 1.0));
}
