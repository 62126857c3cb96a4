//! The one reader of Prometheus' text format in the suite.

/// Every sample line of `text`, split at its last space: the series (name
/// and labels, as written) and the value, still text.
pub fn samples(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
}

/// The sum of `family`'s samples whose labels include every one of
/// `labels` (each `key="value"`); `None` when no sample matches.
pub fn metric(text: &str, family: &str, labels: &[&str]) -> Option<f64> {
    let prefix = format!("{family}{{");
    let values: Vec<f64> = samples(text)
        .filter(|(s, _)| s.starts_with(&prefix) && labels.iter().all(|label| s.contains(label)))
        .filter_map(|(_, value)| value.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// [`metric`] with one label, which must match.
pub fn labelled(text: &str, family: &str, label: &str) -> f64 {
    metric(text, family, &[label])
        .unwrap_or_else(|| panic!("no sample {family} with {label} in:\n{text}"))
}

/// The value of the first sample whose series starts with `prefix`
/// (`family{` or `family{first_label="value"`), which must exist.
pub fn sample(text: &str, prefix: &str) -> f64 {
    samples(text)
        .find(|(series, _)| series.starts_with(prefix))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
}
