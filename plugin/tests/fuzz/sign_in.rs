//! The identity platform's answers and the mapping of failed responses.

use crate::answers::connection;
use crate::check;
use crate::inputs;
use crate::scripted::Scripted;
use dynamics365_plugin::platform::{HttpResponse, TransportError};
use dynamics365_plugin::types::{Error, SignInStatus};
use dynamics365_plugin::{auth, errors};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Token, device-code and identity-error bodies with every field sometimes of
/// the wrong type, plus the generic bodies.
fn identity_body() -> BoxedStrategy<Vec<u8>> {
    let field = || {
        prop_oneof![
            4 => "[ -~]{0,12}".prop_map(Value::from),
            2 => inputs::json_leaf(),
            1 => Just(Value::Null),
        ]
    };
    let error_text = prop_oneof![
        3 => inputs::strings(&[
            "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1",
            "AADSTS7000222: The provided client secret keys are expired.",
            "AADSTS700016: Application not found",
            "AADSTS90002: Tenant not found",
            "AADSTS900023",
            "AADSTS500011: resource principal",
            "AADSTS50173: grant expired",
            "AADSTS70019: code expired",
            "AADSTS65001: consent required",
            "AADSTS53003: blocked by Conditional Access",
            "AADSTS",
            ":",
            "\n",
            "",
        ]),
        1 => inputs::any_text(),
    ];
    let error = inputs::strings(&[
        "authorization_pending",
        "slow_down",
        "authorization_declined",
        "invalid_grant",
        "expired_token",
        "invalid_client",
        "",
    ]);
    let token = (
        field(),
        field(),
        prop::option::of(field()),
        prop::option::of(field()),
    )
        .prop_map(|(access_token, expires_in, refresh_token, token_type)| {
            let mut body = json!({"access_token": access_token, "expires_in": expires_in});
            if let Some(refresh) = refresh_token {
                body["refresh_token"] = refresh;
            }
            if let Some(kind) = token_type {
                body["token_type"] = kind;
            }
            body
        });
    let device = (field(), field(), field(), field(), field(), field()).prop_map(
        |(user_code, device_code, verification_uri, message, expires_in, interval)| {
            json!({
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": verification_uri,
                "message": message,
                "expires_in": expires_in,
                "interval": interval,
            })
        },
    );
    let failure = (error, error_text)
        .prop_map(|(error, description)| json!({"error": error, "error_description": description}));
    let shaped = prop_oneof![token, device, failure].prop_map(|v| v.to_string().into_bytes());
    prop_oneof![
        4 => shaped.clone(),
        2 => (shaped, inputs::mutations()).prop_map(|(b, m)| inputs::mutate_bytes(&b, &m)),
        2 => inputs::body(),
    ]
    .boxed()
}

fn response() -> BoxedStrategy<HttpResponse> {
    (inputs::status(), inputs::headers(), identity_body())
        .prop_map(|(status, headers, body)| HttpResponse {
            status,
            headers,
            body,
        })
        .boxed()
}

#[test]
fn identity_answers_are_accepted_or_refused() {
    check(
        "auth::accept_*",
        1000,
        (connection(), response()),
        |((connection, _), response)| {
            let platform = Scripted::new(&[]);
            let success = (200..300).contains(&response.status);
            let token = auth::accept_token_response(&platform, &connection, &response);
            prop_assert!(success || token.is_err());
            if token.is_ok() {
                // Whatever was cached must be readable again.
                let _ = auth::cached_token(&platform, &connection);
                let _ = auth::token_request(&platform, &connection);
            }
            let code = auth::accept_device_code(&platform, &connection, &response);
            prop_assert!(success || code.is_err());
            if let Ok(code) = code {
                prop_assert!(code.interval_seconds >= 1);
                let _ = auth::device_poll_request(&platform, &connection);
            }
            let poll = auth::accept_device_poll(&platform, &connection, &response);
            if matches!(poll, Ok(SignInStatus::Pending)) {
                prop_assert_eq!(response.status, 400);
            }
            Ok(())
        },
    );
}

#[test]
fn failed_responses_map_to_errors() {
    let dataverse_body = (
        prop_oneof![
            3 => inputs::strings(&["0x8004E023", "0x8004e023", "-2147164125", "0x80041103", "0x80040265", ""]),
            1 => inputs::any_text(),
        ],
        prop_oneof![
            2 => "[ -~]{0,20}",
            1 => "[é💥\u{0301} ]{290,310}",
            1 => inputs::any_text(),
        ],
    )
        .prop_map(|(code, message)| json!({"error": {"code": code, "message": message}}).to_string().into_bytes());
    let body = prop_oneof![2 => dataverse_body, 1 => identity_body()];
    let response =
        (inputs::status(), inputs::headers(), body).prop_map(|(status, headers, body)| {
            HttpResponse {
                status,
                headers,
                body,
            }
        });
    check(
        "errors::from_*",
        1000,
        (
            response,
            inputs::any_text(),
            inputs::any_text(),
            inputs::any_text(),
        ),
        |(response, subject, client_id, url)| {
            let limit = errors::is_aggregate_limit(&response);
            prop_assert!(!limit || response.status == 400);
            let error = errors::from_dataverse(&response, &subject);
            if limit {
                prop_assert!(matches!(error, Error::Limit(_)));
            }
            if response.status == 429 {
                prop_assert!(matches!(error, Error::Throttled(_)));
            }
            let _ = errors::from_identity(&response, &client_id, &subject);
            let _ = errors::origin(&url);
            let _ = errors::from_transport(&TransportError::Failed(subject.clone()), &url);
            let _ = errors::from_transport(&TransportError::Denied(subject), &url);
            Ok(())
        },
    );
}
