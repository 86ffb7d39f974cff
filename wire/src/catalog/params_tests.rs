//! The parameter checks and schemas of [`super`], on the catalog's own actions.

use super::*;

#[test]
fn takes_the_first_present_alternative_name() {
    let params = json!({"query": "rust"});
    assert!(problems(SERPAPI_SEARCH, &params).is_empty());
    let map = params.as_object().unwrap();
    assert_eq!(serpapi::Q.find(map).unwrap().0, "query");
}

#[test]
fn collects_every_problem() {
    let problems = problems(SERPAPI_SEARCH, &json!({"q": "", "num": 500, "safe": "on"}));
    assert_eq!(
        problems,
        [
            "q: must be 1 to 500 characters",
            "num: must be an integer from 1 to 100",
            "safe: must be active or off",
        ]
    );
    let missing = super::problems(SERPAPI_SEARCH, &json!({"q": null}));
    assert_eq!(missing, ["q or query: required"]);
}

#[test]
fn refuses_non_objects_and_checks_list_items() {
    assert_eq!(
        problems(SERPAPI_SEARCH, &json!([1])),
        ["params: must be an object"]
    );
    let chat = json!({"messages": [{"role": "robot", "content": "hi"}, {"role": "user"}]});
    assert_eq!(
        problems(OPENAI_CHAT, &chat),
        [
            "messages.0.role: must be system, user or assistant",
            "messages.1.content: required",
        ]
    );
    assert_eq!(
        problems(OPENAI_CHAT, &json!({})),
        ["messages or input: required"]
    );
    assert!(problems(OPENAI_CHAT, &json!({"input": "hi"})).is_empty());
    assert_eq!(
        problems(OPENAI_CHAT, &json!({"messages": []})),
        ["messages: must be a list of 1 to 50 messages"]
    );
}

#[test]
fn header_fields_refuse_line_breaks_and_addresses_are_checked() {
    let mail = json!({"to": "a@b.co\r\nBcc: x@y.z", "subject": "s\u{2028}", "text": "t", "from": "nobody"});
    let found = problems(GMAIL_SEND, &mail);
    assert!(
        found[0].starts_with("to: must not contain line breaks"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("subject: must not contain line breaks"),
        "{found:?}"
    );
    assert_eq!(found[2], "from: must be an e-mail address");
    let fetch = problems(HTTP_FETCH, &json!({"url": "ftp://x", "headers": {"a": 1}}));
    assert_eq!(
        fetch,
        [
            "url: must be an http or https URL",
            "headers: must be an object of strings"
        ]
    );
    assert!(problems(HTTP_FETCH, &json!({"url": "HTTPS://example.com"})).is_empty());
}

#[test]
fn the_schema_names_every_field_and_what_is_required() {
    let schema = object_schema(GMAIL_SEND);
    let object = &schema["allOf"][0];
    assert_eq!(object["required"], json!(["to", "subject"]));
    assert_eq!(object["properties"]["to"]["format"], "email");
    // `text` or `body`: one of them, not null.
    let alternatives = &schema["allOf"][1]["anyOf"];
    assert_eq!(alternatives[1]["required"], json!(["body"]));
    assert_eq!(alternatives[1]["properties"]["body"]["type"], "string");
    assert!(object["properties"]["html"]["anyOf"][1]["type"] == "null");
    let fetch = object_schema(HTTP_FETCH);
    assert_eq!(
        fetch["properties"]["timeout"]["anyOf"][0]["default"],
        10_000
    );
}
