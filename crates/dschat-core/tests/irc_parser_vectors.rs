//! The IRC codec against the CC0 parser test vectors (irc-parser-tests, by Daniel Oaks):
//! every line of `msg-split.yaml` must split into exactly the expected atoms, and every
//! message of `msg-join.yaml` must serialise into one of the lines the vectors accept.

use dschat_core::irc::Message;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Atoms {
    #[serde(default)]
    tags: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    source: Option<String>,
    verb: String,
    #[serde(default)]
    params: Vec<String>,
}

#[derive(Deserialize)]
struct SplitCase {
    input: String,
    atoms: Atoms,
}

#[derive(Deserialize)]
struct JoinCase {
    #[serde(default)]
    desc: Option<String>,
    atoms: Atoms,
    matches: Vec<String>,
}

#[derive(Deserialize)]
struct Suite<T> {
    tests: Vec<T>,
}

fn load<T: for<'a> Deserialize<'a>>(name: &str) -> Vec<T> {
    let path = format!(
        "{}/tests/data/irc-parser-tests/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("test vectors are checked in");
    serde_yaml::from_str::<Suite<T>>(&text)
        .expect("vectors parse")
        .tests
}

fn expected_tags(atoms: &Atoms) -> BTreeMap<String, String> {
    atoms
        .tags
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn splits_every_vector() {
    let cases: Vec<SplitCase> = load("msg-split.yaml");
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    for case in &cases {
        let message =
            Message::parse(&case.input).unwrap_or_else(|error| panic!("{:?}: {error}", case.input));
        let tags: BTreeMap<String, String> = message
            .tags
            .iter()
            .map(|tag| (tag.key.clone(), tag.value.clone()))
            .collect();
        assert_eq!(tags, expected_tags(&case.atoms), "tags of {:?}", case.input);
        assert_eq!(
            message.source, case.atoms.source,
            "source of {:?}",
            case.input
        );
        assert_eq!(message.command, case.atoms.verb, "verb of {:?}", case.input);
        assert_eq!(
            message.params, case.atoms.params,
            "params of {:?}",
            case.input
        );
    }
}

#[test]
fn joins_every_vector() {
    let cases: Vec<JoinCase> = load("msg-join.yaml");
    assert!(cases.len() >= 10, "only {} cases", cases.len());
    for case in &cases {
        let message = Message {
            tags: expected_tags(&case.atoms)
                .into_iter()
                .map(|(key, value)| dschat_core::irc::Tag { key, value })
                .collect(),
            source: case.atoms.source.clone(),
            command: case.atoms.verb.clone(),
            params: case.atoms.params.clone(),
        };
        let line = message.to_line();
        assert!(
            case.matches.contains(&line),
            "{:?}: {line:?} is not one of {:?}",
            case.desc,
            case.matches
        );
        let parsed = Message::parse(&line).expect("our own line parses");
        assert_eq!(parsed.command, message.command);
        assert_eq!(parsed.params, message.params);
    }
}
