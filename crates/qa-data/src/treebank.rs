//! NLTK's `word_tokenize` word splitter (`NLTKWordTokenizer`, nltk 3.10), which the official
//! CMRC2018 script applies to every run of non-Chinese characters.
//!
//! The regexes and their order mirror `nltk/tokenize/destructive.py`. Two translations are
//! needed for Rust regex engines: Python's `$` (end of string, or before a final `\n`) becomes
//! `(?=\n?\z)`, and Python's `\1` replacement syntax becomes `${1}`. Sentence splitting with
//! Punkt (which `word_tokenize` runs first) is not reproduced: answers are phrases, and NLTK's
//! Punkt model is a download we cannot rely on; this matches `word_tokenize(s, preserve_line=True)`.
//!
//! Most runs in Chinese QA are digits or plain words that no rule touches; those take a fast
//! path (a whitespace split) that gives the same tokens without running any regex.

use std::sync::LazyLock;

use fancy_regex::Regex;

struct Rule {
    regex: Regex,
    replacement: &'static str,
}

struct Rules {
    starting_quotes: Vec<Rule>,
    punctuation: Vec<Rule>,
    parens_brackets: Rule,
    double_dashes: Rule,
    ending_quotes: Vec<Rule>,
    contractions: Vec<Rule>,
}

fn rule(pattern: &str, replacement: &'static str) -> Rule {
    // Python's `$` (only ever the last char of these patterns) also matches before a final "\n".
    let pattern = match pattern.strip_suffix('$') {
        Some(head) => format!(r"{head}(?=\n?\z)"),
        None => pattern.to_string(),
    };
    #[allow(clippy::expect_used)] // constant patterns; any error is a bug caught by the unit tests
    let regex = Regex::new(&pattern).expect("NLTK tokenizer pattern compiles");
    Rule { regex, replacement }
}

static RULES: LazyLock<Rules> = LazyLock::new(|| Rules {
    starting_quotes: vec![
        rule(r"([«“‘„]|[`]+)", " ${1} "),
        rule(r#"^""#, "``"),
        rule(r"(``)", " ${1} "),
        rule(r#"([ \(\[{<])("|'{2})"#, "${1} `` "),
        rule(r"(?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)", "${1} "),
    ],
    punctuation: vec![
        rule(r#"([^\.])(\.)([\]\)}>"'»”’ ]*)\s*$"#, "${1} ${2} ${3} "),
        rule(r"([:,])([^\d])", " ${1} ${2}"),
        rule(r"([:,])$", " ${1} "),
        rule(r"\.{2,}", " ${0} "),
        rule(r"[;@#$%&]", " ${0} "),
        rule(r"[\x{2012}-\x{2015}]", " ${0} "),
        rule(r#"([^\.])(\.)([\]\)}>"']*)\s*$"#, "${1} ${2}${3} "),
        rule(r"[?!]", " ${0} "),
        rule(r"([^'])' ", "${1} ' "),
        rule(r"[*]", " ${0} "),
    ],
    parens_brackets: rule(r"[\]\[\(\)\{\}<>]", " ${0} "),
    double_dashes: rule(r"--", " -- "),
    ending_quotes: vec![
        rule(r"([»”’])", " ${1} "),
        rule(r"''", " '' "),
        rule(r#"""#, " '' "),
        rule(r"\s+", " "),
        rule(r"([^' ])('[sS]|'[mM]|'[dD]|') ", "${1} ${2} "),
        rule(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "${1} ${2} "),
    ],
    contractions: vec![
        rule(r"(?i)\b(can)(not)\b", " ${1} ${2} "),
        rule(r"(?i)\b(d)('ye)\b", " ${1} ${2} "),
        rule(r"(?i)\b(gim)(me)\b", " ${1} ${2} "),
        rule(r"(?i)\b(gon)(na)\b", " ${1} ${2} "),
        rule(r"(?i)\b(got)(ta)\b", " ${1} ${2} "),
        rule(r"(?i)\b(lem)(me)\b", " ${1} ${2} "),
        rule(r"(?i)\b(more)('n)\b", " ${1} ${2} "),
        rule(r"(?i)\b(wan)(na)(?=\s)", " ${1} ${2} "),
        rule(r"(?i) ('t)(is)\b", " ${1} ${2} "),
        rule(r"(?i) ('t)(was)\b", " ${1} ${2} "),
    ],
});

/// Python's `str.isspace()`: Unicode White_Space plus the ASCII separators U+001C–U+001F.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` with no argument.
pub fn python_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_python_space).filter(|s| !s.is_empty())
}

/// A char that some rule may rewrite. ASCII letters (and the two non-ASCII chars that match
/// ASCII letters case-insensitively) matter because of the contraction rules.
fn touched_by_rules(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(
            c,
            '«' | '“'
                | '‘'
                | '„'
                | '`'
                | '"'
                | '\''
                | '»'
                | '”'
                | '’'
                | '.'
                | ':'
                | ','
                | ';'
                | '@'
                | '#'
                | '$'
                | '%'
                | '&'
                | '?'
                | '!'
                | '*'
                | '['
                | ']'
                | '('
                | ')'
                | '{'
                | '}'
                | '<'
                | '>'
                | '-'
                | '\u{2012}'..='\u{2015}' | '\u{17f}' | '\u{212a}'
        )
}

/// Tokenises `text` like `nltk.word_tokenize(text, preserve_line=True)`, appending to `out`.
pub fn word_tokenize_into(text: &str, out: &mut Vec<String>) {
    if !text.chars().any(touched_by_rules) {
        out.extend(python_split(text).map(str::to_string));
        return;
    }
    let rules = &*RULES;
    let mut s = text.to_string();
    let apply = |s: String, r: &Rule| -> String {
        match r.regex.replace_all(&s, r.replacement) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(o) => o,
        }
    };
    for r in &rules.starting_quotes {
        s = apply(s, r);
    }
    for r in &rules.punctuation {
        s = apply(s, r);
    }
    s = apply(s, &rules.parens_brackets);
    s = apply(s, &rules.double_dashes);
    s = format!(" {s} ");
    for r in &rules.ending_quotes {
        s = apply(s, r);
    }
    for r in &rules.contractions {
        s = apply(s, r);
    }
    out.extend(python_split(&s).map(str::to_string));
}

/// Convenience wrapper around [`word_tokenize_into`].
pub fn word_tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    word_tokenize_into(text, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> Vec<String> {
        word_tokenize(s)
    }

    #[test]
    fn nltk_docstring_example() {
        // From NLTKWordTokenizer.tokenize's docstring (a single "line"; no Punkt).
        let s = "Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks.";
        assert_eq!(
            tok(s),
            [
                "Good", "muffins", "cost", "$", "3.88", "(", "roughly", "3,36", "euros", ")", "in",
                "New", "York.", "Please", "buy", "me", "two", "of", "them.", "Thanks", "."
            ]
        );
    }

    #[test]
    fn agrees_with_nltk_3_10() {
        // Expected tokens printed by nltk 3.10.4's NLTKWordTokenizer().tokenize.
        let cases: &[(&str, &[&str])] = &[
            ("'tis", &["'", "tis"]),
            ("don't", &["do", "n't"]),
            ("cannot", &["can", "not"]),
            ("\"hi\"", &["``", "hi", "''"]),
            ("a,b c, d 3,36", &["a", ",", "b", "c", ",", "d", "3,36"]),
            ("e.g.", &["e.g", "."]),
            ("u.s.a", &["u.s.a"]),
            ("wait...", &["wait", "..."]),
            ("a--b", &["a", "--", "b"]),
            ("x:", &["x", ":"]),
            ("x:\n", &["x", ":"]),
            ("gonna", &["gon", "na"]),
            ("wanna go", &["wan", "na", "go"]),
            ("it's", &["it", "'s"]),
            ("'hello' world", &["'", "hello", "'", "world"]),
            (
                "a (b) [c] {d} <e>",
                &[
                    "a", "(", "b", ")", "[", "c", "]", "{", "d", "}", "<", "e", ">",
                ],
            ),
            ("US$5", &["US", "$", "5"]),
            ("hi?!", &["hi", "?", "!"]),
            ("a*b", &["a", "*", "b"]),
            ("O'Neil", &["O'Neil"]),
            ("1.5km.", &["1.5km", "."]),
            ("end.\"", &["end", ".", "''"]),
            ("«a»", &["«", "a", "»"]),
            ("ok... so.", &["ok", "...", "so", "."]),
            ("x—y", &["x", "—", "y"]),
            (
                "a;b@c#d%e&f",
                &["a", ";", "b", "@", "c", "#", "d", "%", "e", "&", "f"],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(tok(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn fast_path_matches_split() {
        assert_eq!(tok(" 1933  5 "), ["1933", "5"]);
        assert_eq!(tok("ω"), ["ω"]);
        assert!(tok("   ").is_empty());
    }
}
