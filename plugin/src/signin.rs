//! Signing a person in with a device code, and the connection test.

use crate::auth;
use crate::client::Session;
use crate::types::{DeviceCode, Error, Identity, SignInStatus};
use serde::Deserialize;

pub fn start_device_sign_in(session: &mut Session) -> Result<DeviceCode, Error> {
    let conn = session.connection();
    let request = auth::device_code_request(conn)?;
    let response = session.send(&request)?;
    auth::accept_device_code(session.platform(), conn, &response)
}

pub fn poll_device_sign_in(session: &mut Session) -> Result<SignInStatus, Error> {
    let conn = session.connection();
    let request = auth::device_poll_request(session.platform(), conn)?;
    let response = session.send(&request)?;
    auth::accept_device_poll(session.platform(), conn, &response)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WhoAmI {
    user_id: String,
    organization_id: String,
    business_unit_id: String,
}

/// Who the connection signs in as (`WhoAmI`).
pub fn who_am_i(session: &mut Session) -> Result<Identity, Error> {
    let who: WhoAmI = session.get_json("WhoAmI", "identity")?;
    Ok(Identity {
        user_id: who.user_id,
        environment_id: Some(who.organization_id),
        details: vec![("Business unit".to_string(), who.business_unit_id)],
    })
}
