use super::*;
use crate::odata::StaticSchema;
use serde_json::json;

const VIEW: StaticSchema = StaticSchema {
    type_name: "Microsoft.Dynamics.CRM.savedquery",
    properties: &[
        ("name", EdmKind::String),
        ("querytype", EdmKind::Int),
        ("statecode", EdmKind::Int),
        ("isdefault", EdmKind::Bool),
        ("score", EdmKind::Decimal),
        ("_ownerid_value", EdmKind::Guid),
        ("createdon", EdmKind::DateTime),
        ("DisplayName", EdmKind::Complex),
    ],
};

fn row(value: serde_json::Value) -> Row {
    serde_json::from_value(value).unwrap()
}

fn parse(text: &str) -> Filter {
    Filter::parse(text, &VIEW).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn error(text: &str) -> ODataError {
    Filter::parse(text, &VIEW).expect_err(text)
}

fn sample() -> Vec<Row> {
    vec![
        row(
            json!({"name": "Open Pipeline", "querytype": 0, "statecode": 0, "isdefault": true, "score": 1.5,
                   "_ownerid_value": "dd621d4a-d898-e711-80e7-00155db763be", "createdon": "2024-03-14T10:00:00Z"}),
        ),
        row(
            json!({"name": "Pipeline 50%_Plus", "querytype": 0, "statecode": 1, "isdefault": false}),
        ),
        row(json!({"name": "Pipeline 50 Plus", "querytype": 4, "statecode": 0})),
        row(json!({"name": "O'Bryan's view", "querytype": 64})),
    ]
}

fn names(filter: &str) -> Vec<String> {
    let filter = parse(filter);
    sample()
        .iter()
        .filter(|r| filter.matches(r))
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn and_binds_tighter_than_or() {
    // querytype eq 4 or (statecode eq 0 and querytype eq 64): the last row has no
    // statecode, so only the quick-find view matches.
    assert_eq!(
        names("querytype eq 4 or statecode eq 0 and querytype eq 64"),
        ["Pipeline 50 Plus"]
    );
    assert_eq!(
        names("(querytype eq 4 or statecode eq 0) and querytype eq 0"),
        ["Open Pipeline"]
    );
}

#[test]
fn not_applies_to_the_next_term_and_nulls_are_unknown() {
    assert_eq!(names("not contains(name,'pipeline')"), ["O'Bryan's view"]);
    // statecode is null on the last row: `not (statecode eq 0)` is unknown there.
    assert_eq!(names("not statecode eq 0"), ["Pipeline 50%_Plus"]);
    assert_eq!(names("statecode eq null"), ["O'Bryan's view"]);
    assert_eq!(
        names("statecode ne null and querytype eq 4"),
        ["Pipeline 50 Plus"]
    );
}

#[test]
fn strings_compare_without_case_and_quotes_are_doubled() {
    assert_eq!(names("name eq 'OPEN pipeline'"), ["Open Pipeline"]);
    assert_eq!(names("name eq 'O''Bryan''s view'"), ["O'Bryan's view"]);
    assert_eq!(names("startswith(name,'o''b')"), ["O'Bryan's view"]);
    assert_eq!(names("endswith(name,'PLUS')").len(), 2);
}

#[test]
fn contains_follows_like_wildcards_and_bracket_escapes() {
    assert_eq!(
        names("contains(name,'50%_Plus')"),
        ["Pipeline 50%_Plus", "Pipeline 50 Plus"]
    );
    assert_eq!(
        names("contains(name,'50[%][_]Plus')"),
        ["Pipeline 50%_Plus"]
    );
    assert_eq!(names("contains(name,'[^p]pen')"), ["Open Pipeline"]);
}

#[test]
fn numbers_booleans_guids_and_dates() {
    assert_eq!(
        names("querytype ge 4 and querytype lt 64"),
        ["Pipeline 50 Plus"]
    );
    assert_eq!(names("score gt 1"), ["Open Pipeline"]);
    assert_eq!(names("isdefault"), ["Open Pipeline"]);
    assert_eq!(names("isdefault eq false"), ["Pipeline 50%_Plus"]);
    assert_eq!(
        names("_ownerid_value eq DD621D4A-D898-E711-80E7-00155DB763BE"),
        ["Open Pipeline"]
    );
    assert_eq!(names("createdon ge 2024-03-14"), ["Open Pipeline"]);
    assert!(names("createdon gt 2024-03-14T10:00:00Z").is_empty());
}

#[test]
fn unknown_properties_name_the_type() {
    assert_eq!(
        error("x eq 1").message,
        "Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.savedquery'."
    );
    assert_eq!(error("x eq 1").code, "0x0");
}

#[test]
fn syntax_errors_give_positions() {
    // The documented example: an unescaped quote.
    let e = Filter::parse(
        "lastname eq 'O'Bryan'",
        &StaticSchema {
            type_name: "Microsoft.Dynamics.CRM.contact",
            properties: &[("lastname", EdmKind::String)],
        },
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
    );
    assert_eq!(
        error("name eq").message,
        "Syntax error at position 7 in 'name eq'."
    );
    assert_eq!(
        error("(name eq 'a'").message,
        "Syntax error at position 12 in '(name eq 'a''."
    );
    assert_eq!(
        error("name eq 'a' name").message,
        "Syntax error at position 12 in 'name eq 'a' name'."
    );
    assert!(error("name eq 'a' # 1").message.contains("character '#'"));
    assert!(error("name").message.contains("single boolean value"));
    assert!(
        error("and eq 1")
            .message
            .starts_with("Syntax error at position 0")
    );
}

#[test]
fn types_and_functions_are_checked() {
    assert!(error("name eq 1").message.contains("incompatible types"));
    assert!(
        error("querytype eq 'x'")
            .message
            .contains("'Edm.Int32' and 'Edm.String'")
    );
    assert!(
        error("_ownerid_value eq 'abc'")
            .message
            .contains("Edm.Guid")
    );
    assert!(error("querytype gt null").message.contains("incompatible"));
    assert!(error("DisplayName eq 'x'").message.contains("incompatible"));
    assert!(
        error("contains(querytype,'1')")
            .message
            .contains("No function signature")
    );
    assert!(
        error("substringof('a',name)")
            .message
            .contains("unknown function")
    );
}

#[test]
fn enum_literals_are_strings() {
    let f = parse("name eq Microsoft.Dynamics.CRM.AttributeTypeCode'Open Pipeline'");
    assert!(f.matches(&sample()[0]));
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    let deep = format!("{}name eq 'a'{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(error(&deep).message.contains("nested"));
    let negations = format!("{} name eq 'Open Pipeline'", "not ".repeat(10_001));
    assert!(parse(&negations).matches(&row(json!({"name": "x"}))));
    assert!(!parse(&negations).matches(&sample()[0]));
    let long = vec!["querytype eq 4"; 3_000].join(" or ");
    assert_eq!(
        sample().iter().filter(|r| parse(&long).matches(r)).count(),
        1
    );
}
