//! Broken dataset files give errors that name the file, the JSON path and what was expected.

use std::path::PathBuf;

use qa_data::squad::{load_predictions, Dataset};

fn write(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qa-data-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn load_err(name: &str, content: &str) -> String {
    let path = write(name, content);
    let msg = Dataset::load(&path).unwrap_err().to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name the file: {msg}"
    );
    msg
}

const QA_OK: &str = r#"{"id":"q1","question":"誰？","answers":[{"text":"甲","answer_start":0}]}"#;

#[test]
fn not_json() {
    let m = load_err("not_json.json", "{\"data\": [\n  {\"paragraphs\": [}\n]}");
    assert!(m.contains("line 2"), "{m}");
}

#[test]
fn missing_data_key() {
    let m = load_err("no_data.json", r#"{"version": "1.0"}"#);
    assert!(m.contains("missing field `data`"), "{m}");
}

#[test]
fn data_is_not_a_list() {
    let m = load_err("data_object.json", r#"{"data": {"title": "x"}}"#);
    assert!(
        m.contains("at data ") && m.contains("expected a sequence"),
        "{m}"
    );
}

#[test]
fn answer_start_is_a_string() {
    let m = load_err(
        "start_string.json",
        r#"{"data":[{"paragraphs":[{"context":"甲乙","qas":[{"id":"q","question":"?","answers":[{"text":"甲","answer_start":"0"}]}]}]}]}"#,
    );
    assert!(
        m.contains("data[0].paragraphs[0].qas[0].answers[0].answer_start"),
        "{m}"
    );
    assert!(m.contains("expected i64"), "{m}");
}

#[test]
fn missing_context() {
    let m = load_err(
        "no_context.json",
        &format!(r#"{{"data":[{{"paragraphs":[{{"qas":[{QA_OK}]}}]}}]}}"#),
    );
    assert!(
        m.contains("data[0].paragraphs[0]") && m.contains("missing field `context`"),
        "{m}"
    );
}

#[test]
fn question_is_a_number() {
    let m = load_err(
        "question_number.json",
        r#"{"data":[{"paragraphs":[{"context":"甲","qas":[{"id":"q","question":7,"answers":[]}]}]}]}"#,
    );
    assert!(
        m.contains("data[0].paragraphs[0].qas[0].question") && m.contains("expected a string"),
        "{m}"
    );
}

#[test]
fn id_is_an_object() {
    let m = load_err(
        "id_object.json",
        r#"{"data":[{"paragraphs":[{"context":"甲","qas":[{"id":{},"question":"?","answers":[]}]}]}]}"#,
    );
    assert!(m.contains("qas[0].id") && m.contains("question id"), "{m}");
}

#[test]
fn no_answers() {
    let m = load_err(
        "no_answers.json",
        r#"{"data":[{"paragraphs":[{"context":"甲","qas":[{"id":"q","question":"?","answers":[]}]}]}]}"#,
    );
    assert!(
        m.contains("data[0].paragraphs[0].qas[0].answers") && m.contains("at least one answer"),
        "{m}"
    );
}

#[test]
fn empty_answer_text() {
    let m = load_err(
        "empty_text.json",
        r#"{"data":[{"paragraphs":[{"context":"甲","qas":[{"id":"q","question":"?","answers":[{"text":"","answer_start":0}]}]}]}]}"#,
    );
    assert!(
        m.contains("answers[0].text") && m.contains("non-empty"),
        "{m}"
    );
}

#[test]
fn duplicate_question_id() {
    let m = load_err(
        "dup.json",
        &format!(r#"{{"data":[{{"paragraphs":[{{"context":"甲","qas":[{QA_OK},{QA_OK}]}}]}}]}}"#),
    );
    assert!(
        m.contains("qas[1].id") && m.contains("used twice") && m.contains("qas[0]"),
        "{m}"
    );
}

#[test]
fn trailing_garbage() {
    let m = load_err("trailing.json", r#"{"data":[]} {"#);
    assert!(m.contains("trailing characters"), "{m}");
}

#[test]
fn missing_file() {
    let msg = Dataset::load("/nonexistent/x.json")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("/nonexistent/x.json") && msg.contains("cannot read"),
        "{msg}"
    );
}

#[test]
fn predictions_must_be_strings() {
    let path = write("preds.json", r#"{"q1": "甲", "q2": ["乙"]}"#);
    let msg = load_predictions(&path).unwrap_err().to_string();
    assert!(
        msg.contains("q2") && msg.contains("expected the answer text"),
        "{msg}"
    );
    let path = write("preds_list.json", r#"["甲"]"#);
    let msg = load_predictions(&path).unwrap_err().to_string();
    assert!(msg.contains("expected a map"), "{msg}");
}
