//! `goals-host serve` through real HTTP: the seed flow, problems, the role
//! matrix, operations endpoints and a graceful stop during a slow sync.

use goals_e2e::{Cli, Sim, hot_leads};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A `goals-host serve` process of `cli`'s data directory on a free port.
pub(crate) struct Served {
    child: tokio::process::Child,
    pub(crate) base: String,
    http: reqwest::Client,
    /// Everything the process wrote on stderr so far.
    logs: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    pub(crate) async fn start(cli: &Cli, extra: &[&str]) -> Served {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = cli
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start goals-host serve");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let kept = std::sync::Arc::clone(&logs);
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                if let Ok(mut logs) = kept.lock() {
                    logs.push_str(&line);
                    logs.push('\n');
                }
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = goals_e2e::announced_url(&mut lines).await;
        // The rest of stdout (the final report) is drained so the process
        // never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Served {
            child,
            base,
            http: reqwest::Client::new(),
            logs,
        }
    }

    /// Sends a request; returns the status and the JSON body (null if none).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send the request");
        let status = response.status();
        let problem = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
        let text = response.text().await.expect("the body");
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            assert!(problem, "{status} for {path} is a problem document: {text}");
            assert_eq!(json["status"], status.as_u16(), "{json}");
        }
        (status, json)
    }

    fn logs(&self) -> String {
        self.logs
            .lock()
            .map(|logs| logs.clone())
            .unwrap_or_default()
    }

    pub(crate) async fn ok(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, json) = self.call(method, path, Some(token), body).await;
        assert!(status.is_success(), "{path}: {status} {json}");
        json
    }
}

impl Served {
    /// A connection named `name` to `sim`, with its secret, added to the
    /// default organization as `token`; its id.
    pub(crate) async fn add_connection(&self, sim: &Sim, name: &str, token: &str) -> String {
        let added = self
            .ok(
                Method::POST,
                "/api/v1/organizations/1/connections",
                token,
                Some(connection_body(sim, name, &sim.config.client_secret)),
            )
            .await;
        added["id"].as_str().expect("a connection id").to_string()
    }
}

/// The ids the "Hot Leads" metric is linked by: the Sales Hub app and the
/// Hot Leads view of the simulator.
pub(crate) struct HotLeads {
    pub(crate) app: String,
    pub(crate) view: String,
}

impl HotLeads {
    /// A link body: the count of Hot Leads through `conn`.
    pub(crate) fn link(&self, conn: &str) -> Value {
        json!({"connection_id": conn, "app_id": self.app, "entity": "lead",
               "view_id": self.view, "column": "fullname", "aggregation": "count"})
    }
}

impl Served {
    /// Looks up the Hot Leads metric's ids through connection `conn`.
    pub(crate) async fn hot_leads(&self, conn: &str, token: &str) -> HotLeads {
        let base = format!("/api/v1/connections/{conn}");
        let apps = self
            .ok(Method::GET, &format!("{base}/apps"), token, None)
            .await;
        let views = self
            .ok(
                Method::GET,
                &format!("{base}/entities/lead/views?search=hot"),
                token,
                None,
            )
            .await;
        let id = |list: &Value, name: &str| {
            find(list, "name", name)["id"]
                .as_str()
                .expect("an id")
                .to_string()
        };
        HotLeads {
            app: id(&apps, "Sales Hub"),
            view: id(&views, "Hot Leads"),
        }
    }
}

pub(crate) async fn token(cli: &Cli, scope: &[&str], role: &str) -> String {
    let mut args = vec!["token", "create", "--role", role];
    args.extend_from_slice(scope);
    let created = cli.json(&args).await;
    created["token"].as_str().expect("a token").to_string()
}

pub(crate) fn connection_body(sim: &Sim, name: &str, secret: &str) -> Value {
    json!({
        "name": name,
        "settings": {
            "environment_url": sim.url(),
            "authority_url": sim.url(),
            "tenant": sim.config.tenant,
            "client_id": sim.config.client_id,
        },
        "secret": { "client_secret": secret },
        "allow_loopback": true,
    })
}

pub(crate) const KR: fn(&str) -> Value = |title| {
    json!({ "title": title, "owner": "ana@contoso.com", "unit": "number",
            "start": 0.0, "target": 10000.0 })
};

/// A tenant and an organization with the integration on, through the API.
async fn switched_on(api: &Served, admin: &str, tenant: &str, org: &str) -> (i64, i64) {
    let (status, created) = api
        .call(
            Method::POST,
            "/api/v1/tenants",
            Some(admin),
            Some(json!({"name": tenant})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["integration_enabled"], false);
    let tenant_id = created["id"].as_i64().expect("tenant id");
    let on = Some(json!({"enabled": true}));
    let switched = api
        .ok(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant_id}/integration"),
            admin,
            on.clone(),
        )
        .await;
    assert_eq!(switched["integration_enabled"], true);
    let (status, org_json) = api
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{tenant_id}/organizations"),
            Some(admin),
            Some(json!({"name": org})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{org_json}");
    assert_eq!(org_json["tenant_id"], tenant_id);
    let org_id = org_json["id"].as_i64().expect("org id");
    api.ok(
        Method::PUT,
        &format!("/api/v1/organizations/{org_id}/integration"),
        admin,
        on,
    )
    .await;
    (tenant_id, org_id)
}

pub(crate) fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item[key] == value))
        .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
}

#[tokio::test]
async fn the_seed_flow_runs_through_the_api_with_the_clis_values() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let (_, org) = switched_on(&api, &admin, "Contoso", "Sales").await;
    let org_admin = token(&cli, &["--org", "Sales"], "org-admin").await;
    let member = token(&cli, &["--org", "Sales"], "member").await;

    let (status, conn) = api
        .call(
            Method::POST,
            &format!("/api/v1/organizations/{org}/connections"),
            Some(&org_admin),
            Some(connection_body(&sim, "sim", &sim.config.client_secret)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{conn}");
    assert_eq!(conn["status"], "ok");
    assert!(!conn.to_string().contains(&sim.config.client_secret));
    let conn = conn["id"].as_str().expect("connection id").to_string();

    // The wizard's steps, as a member.
    let base = format!("/api/v1/connections/{conn}");
    let apps = api
        .ok(Method::GET, &format!("{base}/apps"), &member, None)
        .await;
    let app = find(&apps, "name", "Sales Hub")["id"]
        .as_str()
        .expect("app id")
        .to_string();
    let entities = api
        .ok(
            Method::GET,
            &format!("{base}/apps/{app}/entities"),
            &member,
            None,
        )
        .await;
    find(&entities, "logical_name", "lead");
    let views = api
        .ok(
            Method::GET,
            &format!("{base}/entities/lead/views?search=hot"),
            &member,
            None,
        )
        .await;
    let view = find(&views, "name", "Hot Leads")["id"]
        .as_str()
        .expect("view")
        .to_string();
    assert!(
        views.as_array().is_some_and(|v| v.iter().all(|v| v["name"]
            .as_str()
            .is_some_and(|n| n.to_lowercase().contains("hot")))),
        "{views}"
    );
    let columns = api
        .ok(
            Method::GET,
            &format!("{base}/entities/lead/views/{view}/columns?kind=system"),
            &member,
            None,
        )
        .await;
    find(&columns, "logical_name", "fullname");
    let preview = api
        .ok(
            Method::POST,
            &format!("{base}/measurements"),
            &member,
            Some(
                json!({"entity": "lead", "view_id": view, "view_kind": "system",
                        "column": "fullname", "aggregation": "count"}),
            ),
        )
        .await;
    assert_eq!(preview["value"], json!(hot_leads()));
    assert!(
        preview["requests"].as_u64().is_some_and(|n| n >= 1),
        "{preview}"
    );
    // The CLI measures the same.
    let by_cli = cli
        .json(
            &goals_e2e::hot_leads_measure("sim")
                .iter()
                .copied()
                .chain(["--org", "Sales"])
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(by_cli["value"], preview["value"]);

    let (status, kr) = api
        .call(
            Method::POST,
            &format!("/api/v1/organizations/{org}/key-results"),
            Some(&member),
            Some(KR("Work the hot leads")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{kr}");
    let kr = kr["id"].as_i64().expect("kr id");
    let linked = api
        .ok(
            Method::PUT,
            &format!("/api/v1/key-results/{kr}/link"),
            &member,
            Some(
                json!({"connection_id": conn, "app_id": app, "entity": "lead",
                        "view_id": view, "view_kind": "system", "column": "fullname",
                        "aggregation": "count"}),
            ),
        )
        .await;
    assert_eq!(linked["preview"]["value"], json!(hot_leads()), "{linked}");
    assert_eq!(linked["key_result"]["current_value"], json!(hot_leads()));
    assert_eq!(linked["link"]["view_name"], "Hot Leads");

    let synced = api
        .ok(
            Method::POST,
            &format!("/api/v1/key-results/{kr}/sync"),
            &member,
            None,
        )
        .await;
    assert_eq!(synced["run"]["status"], "success", "{synced}");
    assert_eq!(synced["run"]["trigger"], "manual");

    let details = api
        .ok(
            Method::GET,
            &format!("/api/v1/key-results/{kr}"),
            &member,
            None,
        )
        .await;
    assert_eq!(details["link"]["connection"], "sim");
    assert_eq!(details["link"]["view_name"], "Hot Leads");
    assert_eq!(details["stale"], false);
    let shown = cli.json(&["kr", "show", &kr.to_string()]).await;
    assert_eq!(
        shown["key_result"]["current_value"],
        details["key_result"]["current_value"]
    );

    // History pages: the link's first sync and Sync now.
    let first = api
        .ok(
            Method::GET,
            &format!("/api/v1/key-results/{kr}/history?limit=1"),
            &member,
            None,
        )
        .await;
    assert_eq!(first["runs"].as_array().map(Vec::len), Some(1), "{first}");
    let before = first["next_before"].as_i64().expect("a next page");
    let second = api
        .ok(
            Method::GET,
            &format!("/api/v1/key-results/{kr}/history?limit=1&before={before}"),
            &member,
            None,
        )
        .await;
    assert!(second["runs"][0]["id"].as_i64() < first["runs"][0]["id"].as_i64());
    let alerts = api
        .ok(
            Method::GET,
            &format!("/api/v1/organizations/{org}/alerts"),
            &member,
            None,
        )
        .await;
    assert_eq!(alerts, json!([]));

    // Every route served is in the OpenAPI document.
    let (status, document) = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    for path in [
        "/api/v1/tenants",
        "/api/v1/organizations/{org_id}/connections",
        "/api/v1/connections/{id}/entities/{entity}/views/{view_id}/columns",
        "/api/v1/key-results/{id}/link",
        "/api/v1/key-results/{id}/history",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn errors_are_problems_with_the_right_status_and_kind() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let (_, org) = switched_on(&api, &admin, "Contoso", "Sales").await;
    let connections = format!("/api/v1/organizations/{org}/connections");

    // No token, or an unknown one.
    let (status, problem) = api.call(Method::GET, &connections, None, None).await;
    assert_eq!(
        (status, problem["kind"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (status, _) = api
        .call(Method::GET, &connections, Some("ghk_nope"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A wrong secret: said now, nothing saved, the secret never echoed.
    let (status, problem) = api
        .call(
            Method::POST,
            &connections,
            Some(&admin),
            Some(connection_body(&sim, "sim", "wrong-secret")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["kind"], "unauthorized");
    assert!(!problem.to_string().contains("wrong-secret"));
    assert_eq!(
        api.ok(Method::GET, &connections, &admin, None).await,
        json!([])
    );

    let (_, conn) = api
        .call(
            Method::POST,
            &connections,
            Some(&admin),
            Some(connection_body(&sim, "sim", &sim.config.client_secret)),
        )
        .await;
    let conn = conn["id"].as_str().expect("connection").to_string();
    let measure = |view: &str, column: &str, aggregation: &str| json!({"entity": "lead", "view_id": view, "column": column, "aggregation": aggregation});
    let measurements = format!("/api/v1/connections/{conn}/measurements");
    let (status, problem) = api
        .call(
            Method::POST,
            &measurements,
            Some(&admin),
            Some(measure(
                "00000000-0000-0000-0000-00000000dead",
                "fullname",
                "count",
            )),
        )
        .await;
    assert_eq!(
        (status, problem["kind"].as_str()),
        (StatusCode::NOT_FOUND, Some("not-found")),
        "{problem}"
    );

    let hot = api.hot_leads(&conn, &admin).await;
    let view = hot.view.clone();
    let (status, problem) = api
        .call(
            Method::POST,
            &measurements,
            Some(&admin),
            Some(measure(&view, "fullname", "sum")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("fullname")),
        "{problem}"
    );

    // Malformed bodies name what is wrong; oversized ones are refused.
    let key_results = format!("/api/v1/organizations/{org}/key-results");
    let (status, problem) = api
        .call(
            Method::POST,
            &key_results,
            Some(&admin),
            Some(json!({"title": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("title")),
        "{problem}"
    );
    let (status, _) = api
        .call(
            Method::POST,
            &key_results,
            Some(&admin),
            Some(json!({"title": "x".repeat(70_000)})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // A switched-off organization links nothing.
    let (_, kr) = api
        .call(Method::POST, &key_results, Some(&admin), Some(KR("Hot")))
        .await;
    let kr = kr["id"].as_i64().expect("kr");
    api.ok(
        Method::PUT,
        &format!("/api/v1/organizations/{org}/integration"),
        &admin,
        Some(json!({"enabled": false})),
    )
    .await;
    let (status, problem) = api
        .call(
            Method::PUT,
            &format!("/api/v1/key-results/{kr}/link"),
            Some(&admin),
            Some(
                json!({"connection_id": conn, "app_id": "x", "entity": "lead", "view_id": view,
                        "column": "fullname", "aggregation": "count"}),
            ),
        )
        .await;
    assert_eq!(
        (status, problem["kind"].as_str()),
        (StatusCode::CONFLICT, Some("disabled")),
        "{problem}"
    );
    let (status, problem) = api
        .call(
            Method::POST,
            &format!("/api/v1/key-results/{kr}/sync"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["kind"].as_str()),
        (StatusCode::CONFLICT, Some("not-linked")),
        "{problem}"
    );
    let (status, _) = api
        .call(Method::GET, "/api/v1/nothing-here", Some(&admin), None)
        .await;

    // A throttle: the run that met it fails, the next Sync now is a 429 with
    // Retry-After and sends nothing, unless forced.
    api.ok(
        Method::PUT,
        &format!("/api/v1/organizations/{org}/integration"),
        &admin,
        Some(json!({"enabled": true})),
    )
    .await;
    api.ok(
        Method::PUT,
        &format!("/api/v1/key-results/{kr}/link"),
        &admin,
        Some(hot.link(&conn)),
    )
    .await;
    sim.server.inject_fault(dataverse_sim::Fault::Status {
        status: 429,
        retry_after_seconds: Some(600),
    });
    let sync = format!("/api/v1/key-results/{kr}/sync");
    let met = api.ok(Method::POST, &sync, &admin, None).await;
    assert_eq!(met["run"]["error_kind"], "throttled", "{met}");
    let before = sim.server.requests().len();
    let response = api
        .http
        .post(format!("{}{sync}", api.base))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("sync now");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    let problem: Value = response.json().await.expect("a problem");
    assert_eq!(problem["kind"], "throttled", "{problem}");
    assert_eq!(sim.server.requests().len(), before, "nothing was sent");
    let forced = api
        .ok(Method::POST, &format!("{sync}?force=true"), &admin, None)
        .await;
    assert_eq!(forced["run"]["status"], "success", "{forced}");
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Each role against every endpoint, in its own organization and in another
/// tenant's: allowed, forbidden (403) or not there (404).
#[tokio::test]
async fn every_role_reaches_what_it_may_and_nothing_of_others() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let platform = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let (own_tenant, own_org) = switched_on(&api, &platform, "Contoso", "Sales").await;
    let (other_tenant, other_org) = switched_on(&api, &platform, "Fabrikam", "Support").await;
    let roles = [
        ("platform-admin", platform.clone()),
        (
            "tenant-admin",
            token(&cli, &["--tenant", "Contoso"], "tenant-admin").await,
        ),
        (
            "org-admin",
            token(&cli, &["--org", "Sales"], "org-admin").await,
        ),
        ("member", token(&cli, &["--org", "Sales"], "member").await),
    ];
    let rank = |role: &str| {
        ["platform-admin", "tenant-admin", "org-admin", "member"]
            .iter()
            .position(|r| *r == role)
            .expect("a role")
    };
    let mut unique = 0;
    // What each organization holds: a connection and a linked Key Result.
    let mut held = Vec::new();
    for org in [own_org, other_org] {
        let (_, conn) = api
            .call(
                Method::POST,
                &format!("/api/v1/organizations/{org}/connections"),
                Some(&platform),
                Some(connection_body(&sim, "sim", &sim.config.client_secret)),
            )
            .await;
        let conn = conn["id"].as_str().expect("a connection").to_string();
        held.push(conn);
    }
    let hot = api.hot_leads(&held[0], &platform).await;
    let (app, view) = (&hot.app, &hot.view);
    let mut linked = Vec::new();
    for (org, conn) in [(own_org, &held[0]), (other_org, &held[1])] {
        let (_, kr) = api
            .call(
                Method::POST,
                &format!("/api/v1/organizations/{org}/key-results"),
                Some(&platform),
                Some(KR("Linked")),
            )
            .await;
        let kr = kr["id"].as_i64().expect("kr");
        api.ok(
            Method::PUT,
            &format!("/api/v1/key-results/{kr}/link"),
            &platform,
            Some(hot.link(conn)),
        )
        .await;
        linked.push(kr);
    }

    let mut checked = 0;
    for (role, bearer) in &roles {
        for (own, tenant, org, conn, kr) in [
            (true, own_tenant, own_org, &held[0], linked[0]),
            (false, other_tenant, other_org, &held[1], linked[1]),
        ] {
            unique += 1;
            // Fresh things to delete, made by the platform admin.
            let (_, doomed_kr) = api
                .call(
                    Method::POST,
                    &format!("/api/v1/organizations/{org}/key-results"),
                    Some(&platform),
                    Some(KR(&format!("Doomed {unique}"))),
                )
                .await;
            let doomed_kr = doomed_kr["id"].as_i64().expect("kr");
            let (_, doomed_conn) = api
                .call(
                    Method::POST,
                    &format!("/api/v1/organizations/{org}/connections"),
                    Some(&platform),
                    Some(connection_body(
                        &sim,
                        &format!("doomed {unique}"),
                        &sim.config.client_secret,
                    )),
                )
                .await;
            let doomed_conn = doomed_conn["id"].as_str().expect("connection").to_string();
            let c = format!("/api/v1/connections/{conn}");
            let k = format!("/api/v1/key-results/{kr}");
            let o = format!("/api/v1/organizations/{org}");
            let measure = json!({"entity": "lead", "view_id": view, "column": "fullname",
                                 "aggregation": "count"});
            // (method, path, body, the narrowest role allowed)
            let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
                (Method::GET, o.clone(), None, "member"),
                (Method::GET, format!("{o}/connections"), None, "member"),
                (Method::GET, format!("{o}/key-results"), None, "member"),
                (
                    Method::POST,
                    format!("{o}/key-results"),
                    Some(KR(&format!("KR {unique}"))),
                    "member",
                ),
                (Method::GET, format!("{o}/alerts"), None, "member"),
                (
                    Method::PUT,
                    format!("{o}/integration"),
                    Some(json!({"enabled": true})),
                    "org-admin",
                ),
                (
                    Method::POST,
                    format!("{o}/connections"),
                    Some(json!({"name": "x", "settings": {}, "secret": {}})),
                    "org-admin",
                ),
                (
                    Method::PUT,
                    format!("/api/v1/tenants/{tenant}/integration"),
                    Some(json!({"enabled": true})),
                    "tenant-admin",
                ),
                (
                    Method::POST,
                    format!("/api/v1/tenants/{tenant}/organizations"),
                    Some(json!({"name": format!("Org {unique}")})),
                    "tenant-admin",
                ),
                (Method::GET, c.clone(), None, "member"),
                (Method::POST, format!("{c}/test"), None, "org-admin"),
                (
                    Method::POST,
                    format!("{c}/disable"),
                    Some(json!({"reason": "a test"})),
                    "org-admin",
                ),
                (Method::POST, format!("{c}/enable"), None, "org-admin"),
                (
                    Method::POST,
                    format!("{c}/sign-in"),
                    Some(json!({"secret": {}})),
                    "org-admin",
                ),
                (Method::GET, format!("{c}/apps"), None, "member"),
                (
                    Method::GET,
                    format!("{c}/apps/{app}/entities"),
                    None,
                    "member",
                ),
                (
                    Method::GET,
                    format!("{c}/entities/lead/views?search=hot"),
                    None,
                    "member",
                ),
                (
                    Method::GET,
                    format!("{c}/entities/lead/views/{view}/columns"),
                    None,
                    "member",
                ),
                (
                    Method::POST,
                    format!("{c}/measurements"),
                    Some(measure),
                    "member",
                ),
                (Method::GET, k.clone(), None, "member"),
                (
                    Method::PATCH,
                    k.clone(),
                    Some(json!({"owner": format!("owner {unique}")})),
                    "member",
                ),
                (Method::GET, format!("{k}/history"), None, "member"),
                (
                    Method::PUT,
                    format!("{k}/link"),
                    Some(hot.link(conn)),
                    "member",
                ),
                (Method::POST, format!("{k}/link/pause"), None, "member"),
                (Method::POST, format!("{k}/link/resume"), None, "member"),
                (Method::POST, format!("{k}/sync"), None, "member"),
                (Method::DELETE, format!("{k}/link"), None, "member"),
                (
                    Method::DELETE,
                    format!("/api/v1/key-results/{doomed_kr}"),
                    None,
                    "member",
                ),
                (
                    Method::DELETE,
                    format!("/api/v1/connections/{doomed_conn}"),
                    None,
                    "org-admin",
                ),
            ];
            for (method, path, body, narrowest) in cases {
                let (status, answer) = api.call(method.clone(), &path, Some(bearer), body).await;
                let expected = if !own && *role != "platform-admin" {
                    "hidden"
                } else if rank(role) <= rank(narrowest) {
                    "allowed"
                } else {
                    "forbidden"
                };
                let got = match status {
                    StatusCode::NOT_FOUND => "hidden",
                    StatusCode::FORBIDDEN => "forbidden",
                    s if s.is_success() || s == StatusCode::UNPROCESSABLE_ENTITY => "allowed",
                    other => panic!("{role} {method} {path}: {other} {answer}"),
                };
                assert_eq!(
                    got, expected,
                    "{role} {method} {path} (own: {own}): {answer}"
                );
                checked += 1;
            }
            // The link of the next round starts from a linked Key Result.
            api.ok(
                Method::PUT,
                &format!("{k}/link"),
                &platform,
                Some(hot.link(conn)),
            )
            .await;
        }
    }
    assert_eq!(checked, 4 * 2 * 29);
    // What the integrations declare is for every role.
    for (role, bearer) in &roles {
        let integrations = api
            .ok(Method::GET, "/api/v1/integrations", bearer, None)
            .await;
        assert_eq!(integrations[0]["id"], "microsoft.dynamics365", "{role}");
    }
    // Creating tenants is the platform admin's alone.
    for (role, bearer) in &roles {
        let (status, _) = api
            .call(
                Method::POST,
                "/api/v1/tenants",
                Some(bearer),
                Some(json!({"name": format!("T {role}")})),
            )
            .await;
        let expected = if *role == "platform-admin" {
            StatusCode::CREATED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(status, expected, "{role}");
    }
}

#[tokio::test]
async fn operations_endpoints_need_no_token_and_count_what_happens() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = cli.linked_hot_leads_kr("sim", &[]).await;
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--log-format", "json"]).await;
    let (status, health) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, ready) = api.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(
        ready["checks"],
        json!({"database": true, "plugins": true, "scheduler": true})
    );
    api.ok(Method::GET, "/api/v1/tenants", &admin, None).await;
    let synced = api
        .ok(
            Method::POST,
            &format!("/api/v1/key-results/{kr}/sync"),
            &admin,
            None,
        )
        .await;
    assert_eq!(synced["run"]["status"], "success", "{synced}");
    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for family in [
        "goals_syncs_total{outcome=\"success\"} 1",
        "goals_environment_requests_total 1",
        "goals_sync_duration_seconds",
        "goals_due_links",
        "goals_scheduler_lag_seconds",
        "goals_open_alerts",
    ] {
        assert!(metrics.contains(family), "{family} in\n{metrics}");
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("goals_api_requests_total{")
                && l.contains("route=\"/api/v1/tenants\"")
                && l.contains("status=\"200\"")),
        "{metrics}"
    );

    // One JSON object per request and per sync, never the token.
    let logs = api.logs();
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let request = lines
        .iter()
        .find(|l| l["fields"]["route"] == "/api/v1/key-results/{id}/sync")
        .unwrap_or_else(|| panic!("a request line in\n{logs}"));
    assert_eq!(request["fields"]["status"], 200, "{request}");
    assert!(request["fields"]["duration_ms"].is_number(), "{request}");
    let sync = lines
        .iter()
        .find(|l| l["target"] == "goals_host::sync")
        .unwrap_or_else(|| panic!("a sync line in\n{logs}"));
    assert_eq!(sync["fields"]["outcome"], "success", "{sync}");
    assert_eq!(sync["fields"]["kr"].to_string(), kr, "{sync}");
    assert_eq!(sync["fields"]["requests"], 1, "{sync}");
    assert!(!logs.contains(&admin) && !logs.contains("Bearer"), "{logs}");
}

#[tokio::test]
async fn sigterm_lets_a_running_sync_now_finish_and_exits_zero() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = cli.linked_hot_leads_kr("sim", &[]).await;
    let member = token(&cli, &["--org", "default"], "member").await;
    let mut api = Served::start(&cli, &["--grace", "30"]).await;
    sim.server.set_latency(Duration::from_secs(3));
    let (http, url) = (
        api.http.clone(),
        format!("{}/api/v1/key-results/{kr}/sync", api.base),
    );
    let bearer = member.clone();
    let sync = tokio::spawn(async move {
        let response = http
            .post(url)
            .bearer_auth(bearer)
            .send()
            .await
            .expect("sync now");
        (
            response.status(),
            response.json::<Value>().await.expect("json"),
        )
    });
    // SIGTERM once the sync is under way (the database says so), not after a
    // guessed delay.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = api
            .http
            .get(format!("{}/metrics", api.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if metrics.lines().any(|l| l == "goals_running_links 1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sync never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second Sync now meanwhile is refused: single flight, with the running
    // sync's start.
    let (status, second) = api
        .call(
            Method::POST,
            &format!("/api/v1/key-results/{kr}/sync"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{second}");
    assert_eq!(second["kind"], "already-running", "{second}");
    assert!(
        goals_e2e::seconds(&second["running_since"]).is_some(),
        "{second}"
    );
    let pid = api.child.id().expect("a pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let (status, answer) = sync.await.expect("the request");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["run"]["status"], "success", "{answer}");
    let exit = tokio::time::timeout(Duration::from_secs(60), api.child.wait())
        .await
        .expect("serve stops within its grace")
        .expect("exit status");
    assert_eq!(exit.code(), Some(0));
}

#[tokio::test]
async fn a_person_signs_in_with_a_device_code_and_a_new_secret_replaces_the_old() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &["--org", "default"], "org-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let connections = "/api/v1/organizations/1/connections";

    // A person's connection: added waiting for the sign-in, then a device code.
    let mut person = connection_body(&sim, "person", "");
    person.as_object_mut().expect("object").remove("secret");
    let (status, added) = api
        .call(Method::POST, connections, Some(&admin), Some(person))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["status"], "needs-sign-in");
    let sign_in = format!(
        "/api/v1/connections/{}/sign-in",
        added["id"].as_str().expect("id")
    );
    let (status, code) = api
        .call(Method::POST, &sign_in, Some(&admin), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{code}");
    assert!(
        code["verification_uri"]
            .as_str()
            .is_some_and(|u| u.contains("/devicelogin"))
    );
    let pending = api.ok(Method::GET, &sign_in, &admin, None).await;
    assert_eq!(pending["status"], "pending");
    sim.server
        .approve_device_code(code["user_code"].as_str().expect("a user code"));
    let done = api.ok(Method::GET, &sign_in, &admin, None).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["connection"]["status"], "ok");

    // A service principal's: a wrong new secret changes nothing, the right one
    // replaces the old.
    let (_, added) = api
        .call(
            Method::POST,
            connections,
            Some(&admin),
            Some(connection_body(&sim, "app", &sim.config.client_secret)),
        )
        .await;
    let sign_in = format!(
        "/api/v1/connections/{}/sign-in",
        added["id"].as_str().expect("id")
    );
    sim.server.replace_client_secret("rotated");
    let wrong = json!({"secret": {"client_secret": "not-it"}});
    let (status, problem) = api
        .call(Method::POST, &sign_in, Some(&admin), Some(wrong))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(!problem.to_string().contains("not-it"));
    let right = json!({"secret": {"client_secret": "rotated"}});
    let done = api.ok(Method::POST, &sign_in, &admin, Some(right)).await;
    assert_eq!(done["status"], "complete", "{done}");
    let conn = added["id"].as_str().expect("id");
    let tested = api
        .ok(
            Method::POST,
            &format!("/api/v1/connections/{conn}/test"),
            &admin,
            None,
        )
        .await;
    assert!(tested["user_id"].is_string(), "{tested}");
}

/// The request bodies the OpenAPI document declares: (method, path, the
/// component schema's name).
fn documented_bodies(document: &Value) -> Vec<(Method, String, String)> {
    let mut bodies = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            if let Some(reference) = schema.as_str() {
                let name = reference.rsplit('/').next().expect("a name").to_string();
                let method =
                    Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
                bodies.push((method, path.clone(), name));
            }
        }
    }
    bodies
}

#[tokio::test]
async fn every_documented_example_follows_its_schema() {
    let cli = Cli::new();
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let (_, document) = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let bodies = documented_bodies(&document);
    assert!(bodies.len() >= 10, "{bodies:?}");
    let mut examples = 0;
    for (method, path, name) in bodies {
        let schema = &document["components"]["schemas"][&name];
        let Some(properties) = schema["properties"].as_object() else {
            panic!("{name} has properties");
        };
        let example: serde_json::Map<String, Value> = properties
            .iter()
            .filter_map(|(key, property)| Some((key.clone(), property.get("example")?.clone())))
            .collect();
        if example.is_empty() {
            continue;
        }
        examples += 1;
        let rooted = json!({
            "$ref": format!("#/components/schemas/{name}"),
            "components": document["components"],
        });
        let validator = jsonschema::validator_for(&rooted).expect("the schema compiles");
        let example = Value::Object(example);
        // Members without an example are left out; only what is required must be there.
        let errors: Vec<String> = validator
            .iter_errors(&example)
            .map(|e| e.to_string())
            .filter(|e| !e.contains("is a required property"))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {name}: {errors:?} in {example}"
        );
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        for key in required {
            let key = key.as_str().expect("a name");
            assert!(
                example.get(key).is_some(),
                "{name}.{key} is required and has no example"
            );
        }
    }
    assert!(examples >= 4, "{examples} bodies have examples");

    // Every documented operation is served: without a token it is refused, or
    // answered, but never missed by the router.
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            let concrete = path
                .split('/')
                .map(|part| if part.starts_with('{') { "1" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let (status, answer) = api.call(method.clone(), &concrete, None, None).await;
            let missed = answer["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no route"));
            assert!(
                !missed,
                "{method} {path} is documented but not served: {status} {answer}"
            );
        }
    }
}

/// Random JSON, shaped or not like each documented body, sent to every route
/// that takes one: answered with a problem or a result, never a 500.
#[tokio::test]
async fn random_bodies_never_make_a_server_error() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let conn = api.add_connection(&sim, "sim", &admin).await;
    let (_, kr) = api
        .call(
            Method::POST,
            "/api/v1/organizations/1/key-results",
            Some(&admin),
            Some(KR("Fuzzed")),
        )
        .await;
    let kr = kr["id"].as_i64().expect("a Key Result").to_string();
    let (_, document) = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;

    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-zA-Z0-9 _./:-]{0,12}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let mut runner = TestRunner::new(Config {
        rng_seed: proptest::test_runner::RngSeed::Fixed(7),
        ..Config::default()
    });
    let mut sent = 0;
    for (method, path, name) in documented_bodies(&document) {
        let concrete = path
            .replace("{tenant_id}", "1")
            .replace("{org_id}", "1")
            .replace("{app_id}", "x")
            .replace("{entity}", "lead")
            .replace("{view_id}", "x")
            .replace(
                "{id}",
                if path.starts_with("/api/v1/connections") {
                    &conn
                } else {
                    &kr
                },
            );
        let mut fields: Vec<String> = document["components"]["schemas"][&name]["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        fields.extend(["client_secret".to_string(), "api_key".to_string()]);
        let shaped = prop::collection::vec((prop::sample::select(fields), value.clone()), 0..7)
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()));
        let body = prop_oneof![3 => shaped, 1 => value.clone()];
        for _ in 0..24 {
            let random = body.new_tree(&mut runner).expect("a value").current();
            let (status, answer) = api
                .call(
                    method.clone(),
                    &concrete,
                    Some(&admin),
                    Some(random.clone()),
                )
                .await;
            sent += 1;
            assert_ne!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{method} {concrete} with {random}: {answer}"
            );
        }
    }
    assert!(sent > 200, "{sent} requests");
}

/// The wizard's calls count against the connection's limit with the syncs:
/// with one slot per connection, four previews at once reach the environment
/// one at a time (four at once without the slots).
#[tokio::test]
async fn previews_wait_for_the_connections_slots() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler", "--per-connection", "1"]).await;
    let conn = api.add_connection(&sim, "sim", &admin).await;
    let hot = api.hot_leads(&conn, &admin).await;
    let preview = format!("/api/v1/connections/{conn}/measurements");
    let body = json!({"entity": "lead", "view_id": hot.view, "column": "fullname",
                      "aggregation": "count"});
    sim.server.set_latency(Duration::from_millis(100));
    let ask = || api.ok(Method::POST, &preview, &admin, Some(body.clone()));
    let answers = tokio::join!(ask(), ask(), ask(), ask());
    for answer in [answers.0, answers.1, answers.2, answers.3] {
        assert_eq!(answer["value"], json!(hot_leads()), "{answer}");
    }
    assert_eq!(sim.server.peak_concurrency(), 1);
}
