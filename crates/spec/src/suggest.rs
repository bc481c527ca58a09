//! Helpers for error messages: the nearest valid key for a typo, and where in a YAML text a
//! key sits (serde_yaml reports positions only for its own parse and type errors).

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Adds "did you mean X?" to serde's "unknown field `X`, expected one of `a`, `b`" and
/// "unknown variant" messages.
pub fn with_suggestion(message: &str) -> String {
    let Some(rest) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))
        .or_else(|| {
            message
                .find(": unknown field `")
                .map(|i| &message[i + ": unknown field `".len()..])
        })
        .or_else(|| {
            message
                .find(": unknown variant `")
                .map(|i| &message[i + ": unknown variant `".len()..])
        })
    else {
        return message.to_string();
    };
    let Some((word, tail)) = rest.split_once('`') else {
        return message.to_string();
    };
    let expected: Vec<&str> = tail
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    match nearest(word, &expected) {
        Some(n) => format!("{message} (did you mean `{n}`?)"),
        None => message.to_string(),
    }
}

/// 1-based line and column of the last of `needles` found, each searched after the previous
/// one (e.g. `["ablations", "name: pooler-5", "model_config.pooler_num_fc_layers"]`).
/// Matches inside `#` comments are skipped.
pub fn locate(text: &str, needles: &[&str]) -> Option<(usize, usize)> {
    let mut pos = 0;
    let mut found = None;
    for n in needles.iter().filter(|n| !n.is_empty()) {
        match find_outside_comments(text, pos, n) {
            Some(i) => {
                found = Some(i);
                pos = i + n.len();
            }
            None => break,
        }
    }
    let i = found?;
    let line_start = text[..i].rfind('\n').map(|j| j + 1).unwrap_or(0);
    let line = text[..i].matches('\n').count() + 1;
    Some((line, text[line_start..i].chars().count() + 1))
}

fn find_outside_comments(text: &str, from: usize, needle: &str) -> Option<usize> {
    let mut start = from;
    loop {
        let i = text.get(start..)?.find(needle)? + start;
        let line_start = text[..i].rfind('\n').map(|j| j + 1).unwrap_or(0);
        let before = &text[line_start..i];
        let in_comment = before
            .char_indices()
            .any(|(j, c)| c == '#' && (j == 0 || before[..j].ends_with([' ', '\t'])));
        if !in_comment {
            return Some(i);
        }
        start = i + needle.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(
            nearest("learning_rat", &["learning_rate", "seed"]),
            Some("learning_rate")
        );
        assert_eq!(nearest("zzz", &["learning_rate", "seed"]), None);
        let m = with_suggestion("base.train: unknown field `learnng_rate`, expected one of `seed`, `learning_rate` at line 3 column 5");
        assert!(m.ends_with("(did you mean `learning_rate`?)"), "{m}");
    }

    #[test]
    fn locates_nested_keys() {
        let t = "a: 1\nablations:\n  - name: x\n    set: {k: 1}\n";
        assert_eq!(locate(t, &["ablations", "x", "k"]), Some((4, 11)));
        assert_eq!(locate(t, &["nothing"]), None);
        assert_eq!(locate("# k\nk: 1\n", &["k"]), Some((2, 1)));
        assert_eq!(locate(t, &["ablations", "nothing"]), Some((2, 1)));
    }
}
