use super::*;

const ORIGIN: &str = "http://127.0.0.1:4000";

fn request(tenant: &str, body: &str) -> (u16, Value, TokenStore) {
    let store = TokenStore::default();
    let (status, value) = token_response(
        &SimConfig::default(),
        &store,
        tenant,
        body.as_bytes(),
        &[ORIGIN.to_string()],
    );
    (status, value, store)
}

fn body(client_id: &str, secret: &str, scope: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .finish()
}

const CLIENT: &str = "00000000-0000-0000-0000-00000000c11e";

#[test]
fn issues_a_token_remembered_until_expired() {
    let (status, value, store) = request(
        "sim-tenant",
        &body(CLIENT, "sim-secret", "http://127.0.0.1:4000/.default"),
    );
    assert_eq!(status, 200, "{value}");
    assert_eq!(value["token_type"], "Bearer");
    assert_eq!(value["expires_in"], 3599);
    assert_eq!(value["ext_expires_in"], 3599);
    let token = value["access_token"].as_str().unwrap();
    assert!(store.is_valid(token));
    assert!(!store.is_valid("forged"));
    store.expire_all();
    assert!(!store.is_valid(token));
    // The environment URL may carry a trailing slash before /.default.
    let (status, _, _) = request(
        "SIM-TENANT",
        &body(CLIENT, "sim-secret", "http://127.0.0.1:4000//.default"),
    );
    assert_eq!(status, 200);
}

fn refused(tenant: &str, body: &str) -> (u16, String, String, Value) {
    let (status, value, _) = request(tenant, body);
    (
        status,
        value["error"].as_str().unwrap().to_string(),
        value["error_description"].as_str().unwrap().to_string(),
        value,
    )
}

#[test]
fn refusals_follow_the_documented_shape() {
    let scope = "http://127.0.0.1:4000/.default";
    let (status, error, description, value) = refused("other", &body(CLIENT, "sim-secret", scope));
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    assert!(description.starts_with("AADSTS90002: Tenant 'other' not found."));
    assert!(description.contains("\r\nTrace ID: "));
    assert!(description.contains("\r\nCorrelation ID: "));
    assert_eq!(value["error_codes"], json!([90002]));
    assert_eq!(value["trace_id"].as_str().map(str::len), Some(36));

    let (status, error, description, _) =
        refused("sim-tenant", &body("someone", "sim-secret", scope));
    assert_eq!((status, error.as_str()), (400, "unauthorized_client"));
    assert!(description.starts_with(
        "AADSTS700016: Application with identifier 'someone' was not found in the directory 'sim-tenant'."
    ));

    let (status, error, description, value) = refused("sim-tenant", &body(CLIENT, "guess", scope));
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(description.starts_with("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID"));
    assert!(
        !value.to_string().contains("guess"),
        "the secret is never echoed"
    );

    let (status, error, description, _) = refused(
        "sim-tenant",
        &body(
            CLIENT,
            "sim-secret",
            "https://org.crm.dynamics.com/.default",
        ),
    );
    assert_eq!((status, error.as_str()), (400, "invalid_scope"));
    assert!(description.starts_with(
        "AADSTS70011: The provided value for the input parameter 'scope' is not valid."
    ));

    let (status, error, description, _) = refused("sim-tenant", "grant_type=password&client_id=x");
    assert_eq!((status, error.as_str()), (400, "unsupported_grant_type"));
    assert!(description.starts_with("AADSTS70003:"));
}

#[test]
fn secrets_with_reserved_characters_arrive_decoded() {
    let store = TokenStore::default();
    let config = SimConfig {
        client_secret: "s3cr+t&=x y".into(),
        ..SimConfig::default()
    };
    let (status, _) = token_response(
        &config,
        &store,
        "sim-tenant",
        body(CLIENT, "s3cr+t&=x y", "http://127.0.0.1:4000/.default").as_bytes(),
        &[ORIGIN.to_string()],
    );
    assert_eq!(status, 200);
}

fn device_body(scope: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", CLIENT), ("scope", scope)])
        .finish()
}

fn device_authorization(store: &TokenStore, scope: &str) -> (u16, Value) {
    device_code_response(
        &SimConfig::default(),
        store,
        "sim-tenant",
        device_body(scope).as_bytes(),
        &[ORIGIN.to_string()],
    )
}

fn poll(store: &TokenStore, device_code: &str) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", CLIENT),
            ("device_code", device_code),
        ])
        .finish();
    token_response(
        &SimConfig::default(),
        store,
        "sim-tenant",
        body.as_bytes(),
        &[ORIGIN.to_string()],
    )
}

#[test]
fn tokens_know_whom_they_sign_in_as() {
    let store = TokenStore::default();
    let app = store.issue(Duration::from_secs(60));
    let person = store.issue_for(Caller::User("u-1".into()), Duration::from_secs(60));
    assert_eq!(store.check(&app), TokenCheck::Valid(Caller::Application));
    assert_eq!(
        store.check(&person),
        TokenCheck::Valid(Caller::User("u-1".into()))
    );
    assert_eq!(store.check("forged"), TokenCheck::Unknown);
    store.advance_clock(Duration::from_secs(60));
    assert_eq!(store.check(&app), TokenCheck::Expired);
    assert_eq!(store.check(&person), TokenCheck::Expired);
    assert!(!store.is_valid(&app));
    assert_eq!(store.issued_secrets(), [app, person]);
}

#[test]
fn user_codes_are_typed_by_people() {
    let store = TokenStore::default();
    let mut codes = std::collections::HashSet::new();
    for _ in 0..200 {
        let (status, value) = device_authorization(&store, &format!("{ORIGIN}/user_impersonation"));
        assert_eq!(status, 200, "{value}");
        let code = value["user_code"].as_str().unwrap().to_string();
        assert_eq!(code.len(), 8);
        assert!(
            code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)),
            "{code}"
        );
        assert!(codes.insert(code), "user codes are unique");
    }
    assert_eq!(normalize_user_code(" abcd-efgh "), "ABCDEFGH");
    let first = store.device_codes()[0].user_code.clone();
    let typed = format!("{}-{}", &first[..4], first[4..].to_ascii_lowercase());
    assert_eq!(store.decide(&typed, Decision::Deny), Ok(()));
    let again = store.decide(&first, Decision::Deny).unwrap_err();
    assert!(again.ends_with("is Denied, not pending"), "{again}");
    let unknown = store.decide("nothing", Decision::Deny).unwrap_err();
    assert_eq!(unknown, "no device code has the user code 'nothing'");
}

#[test]
fn the_person_is_who_approved() {
    let store = TokenStore::default();
    let (_, value) = device_authorization(&store, &format!("{ORIGIN}/user_impersonation"));
    let user_code = value["user_code"].as_str().unwrap();
    let device_code = value["device_code"].as_str().unwrap();
    store
        .decide(
            user_code,
            Decision::Approve {
                user_id: "person-7".into(),
            },
        )
        .unwrap();
    let (status, tokens) = poll(&store, device_code);
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        tokens["scope"],
        json!(format!("{ORIGIN}/user_impersonation"))
    );
    assert_eq!(
        store.check(tokens["access_token"].as_str().unwrap()),
        TokenCheck::Valid(Caller::User("person-7".into()))
    );
}

#[test]
fn nothing_debug_prints_a_secret() {
    let store = TokenStore::default();
    let (_, value) = device_authorization(
        &store,
        &format!("{ORIGIN}/user_impersonation offline_access"),
    );
    store
        .decide(
            value["user_code"].as_str().unwrap(),
            Decision::Approve {
                user_id: "u".into(),
            },
        )
        .unwrap();
    poll(&store, value["device_code"].as_str().unwrap());
    store.issue(Duration::from_secs(5));
    let secrets = store.issued_secrets();
    assert_eq!(secrets.len(), 4);
    let shown = format!("{store:?} {:?}", store.device_codes());
    assert!(shown.contains("access_tokens: 2"), "{shown}");
    for secret in &secrets {
        assert!(!shown.contains(secret.as_str()));
    }
}

#[test]
fn grant_types_are_read_from_the_form() {
    assert_eq!(
        grant_type_of(b"client_id=x&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=secret"),
        Some(DEVICE_CODE_GRANT.to_string())
    );
    assert_eq!(grant_type_of(b"client_id=x"), None);
    assert_eq!(grant_type_of(&[0xff, 0xfe]), None);
}

#[test]
fn the_clock_moves_error_timestamps() {
    let store = TokenStore::default();
    let before = store.now_unix();
    store.advance_clock(Duration::from_secs(10 * 86_400));
    let (status, value) = device_authorization(&store, "nope");
    assert_eq!(status, 400);
    let expected = timestamp(before + 10 * 86_400);
    // The second may tick over between the two readings.
    let shown = value["timestamp"].as_str().unwrap();
    assert!(
        shown == expected || shown == timestamp(before + 10 * 86_400 + 1),
        "{shown} vs {expected}"
    );
    assert!(shown.ends_with('Z') && shown.contains(' '));
}

#[test]
fn a_replaced_client_secret_refuses_the_old_one() {
    let store = TokenStore::default();
    let ask = |secret: &str| {
        token_response(
            &SimConfig::default(),
            &store,
            "sim-tenant",
            body(CLIENT, secret, "http://127.0.0.1:4000/.default").as_bytes(),
            &[ORIGIN.to_string()],
        )
    };
    assert_eq!(ask("sim-secret").0, 200);
    store.replace_client_secret("rotated-secret");
    let (status, value) = ask("sim-secret");
    assert_eq!(status, 401, "{value}");
    assert_eq!(value["error_codes"][0], 7000215);
    assert_eq!(ask("rotated-secret").0, 200);
}
