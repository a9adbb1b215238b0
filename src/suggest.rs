//! "Did you mean": the closest of some names to one that is not among them, used wherever a
//! name is looked up (a job file's keys and variables, `--var`, a subcommand).

/// The closest of `choices` to `name`, if close enough to be a likely typo.
pub fn suggest<'a>(name: &str, choices: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    choices
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.max(name.len() / 4) && *d < c.len().max(name.len()))
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}
