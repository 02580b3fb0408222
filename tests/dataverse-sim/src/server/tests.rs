//! The server over real loopback HTTP/1.1, with a hand-written client.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Reply {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

pub(super) async fn send(address: SocketAddr, request: String) -> Reply {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub(super) async fn get(
    sim: &RunningSimulator,
    path_and_query: &str,
    token: Option<&str>,
) -> Reply {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    send(
        sim.address(),
        format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nOData-MaxVersion: 4.0\r\nOData-Version: 4.0\r\nPrefer: odata.include-annotations=\"*\"\r\n{auth}Connection: close\r\n\r\n",
            sim.address()
        ),
    )
    .await
}

pub(super) async fn token(sim: &RunningSimulator, secret: &str) -> Reply {
    let config = sim.config();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", secret),
            ("scope", &format!("{}/.default", sim.url())),
        ])
        .finish();
    send(
        sim.address(),
        format!(
            "POST /{}/oauth2/v2.0/token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            config.tenant,
            sim.address(),
            body.len()
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_and_lists_apps_over_http() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    assert_eq!(
        sim.url(),
        format!("http://127.0.0.1:{}", sim.address().port())
    );

    let refused = token(&sim, "wrong").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["error"], "invalid_client");
    assert!(!refused.body.contains("wrong"));

    let signed_in = token(&sim, "sim-secret").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let access = signed_in.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let anonymous = get(&sim, "/api/data/v9.2/appmodules", None).await;
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(anonymous.json()["error"]["code"], "0x80040220");

    let path = "/api/data/v9.2/appmodules?$select=appmoduleid%2Cappmoduleidunique%2Cname%2Cuniquename%2Cdescription%2Cstatecode&$filter=statecode%20eq%200&$orderby=name";
    let apps = get(&sim, path, Some(&access)).await;
    assert_eq!(apps.status, 200, "{}", apps.body);
    assert_eq!(
        apps.header("content-type"),
        Some("application/json; odata.metadata=minimal")
    );
    assert_eq!(apps.header("odata-version"), Some("4.0"));
    assert_eq!(
        apps.header("preference-applied"),
        Some("odata.include-annotations=\"*\"")
    );
    let body = apps.json();
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "{}/api/data/v9.2/$metadata#appmodules(",
                sim.url()
            ))
    );
    let names: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Customer Service Hub", "Sales Hub"]);

    let recorded = sim.requests();
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(
        recorded[0].path,
        format!("/{}/oauth2/v2.0/token", sim.config().tenant)
    );
    assert_eq!(recorded[0].status, 401);
    assert!(!recorded[2].authorized);
    assert!(recorded[3].authorized);
    assert_eq!(recorded[3].path, "/api/data/v9.2/appmodules");
    assert!(recorded[3].query.starts_with("$select=appmoduleid%2C"));
    sim.clear_requests();
    assert!(sim.requests().is_empty());

    sim.expire_tokens();
    let expired = get(&sim, "/api/data/v9.2/WhoAmI", Some(&access)).await;
    assert_eq!(expired.status, 401);
    assert!(!sim.requests()[0].authorized);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_served_once_each() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let access = token(&sim, "sim-secret").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    sim.inject_fault(Fault::Status {
        status: 429,
        retry_after_seconds: Some(7),
    });
    sim.inject_fault(Fault::HtmlError);
    sim.inject_fault(Fault::TruncatedBody);
    let throttled = get(&sim, "/api/data/v9.2/WhoAmI", Some(&access)).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("7"));
    assert_eq!(throttled.json()["error"]["code"], "0x80072322");
    let gateway = get(&sim, "/api/data/v9.2/WhoAmI", Some(&access)).await;
    assert_eq!(gateway.status, 502);
    assert!(gateway.body.starts_with("<html>"));
    let truncated = get(&sim, "/api/data/v9.2/WhoAmI", Some(&access)).await;
    assert_eq!(truncated.status, 200);
    assert!(serde_json::from_str::<Value>(&truncated.body).is_err());
    let normal = get(&sim, "/api/data/v9.2/WhoAmI()", Some(&access)).await;
    assert_eq!(normal.status, 200);
    assert_eq!(
        normal.json()["UserId"],
        json!(dataset().application_user_id)
    );
    let elsewhere = get(&sim, "/nothing/here", Some(&access)).await;
    assert_eq!(elsewhere.status, 404);

    // Faults left over are dropped, and counted.
    assert_eq!(sim.clear_faults(), 0);
    sim.inject_fault(Fault::HtmlOk);
    sim.inject_fault(Fault::HtmlOk);
    let proxy = get(&sim, "/api/data/v9.2/WhoAmI()", Some(&access)).await;
    assert!(proxy.body.starts_with("<html>"));
    assert_eq!(sim.clear_faults(), 1);
    let normal = get(&sim, "/api/data/v9.2/WhoAmI()", Some(&access)).await;
    assert_eq!(normal.status, 200);
    assert!(normal.json()["UserId"].is_string());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_counted_overall_and_per_token() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let first = signed_in(&sim).await;
    let second = signed_in(&sim).await;
    assert_ne!(first, second);
    assert_eq!(sim.peak_concurrency_per_token(), Vec::<usize>::new());
    // Each answer waits a second, so requests sent together overlap.
    sim.set_latency(Duration::from_secs(1));
    let who = "/api/data/v9.2/WhoAmI()";
    let replies = futures_util::future::join_all([
        get(&sim, who, Some(&first)),
        get(&sim, who, Some(&first)),
        get(&sim, who, Some(&first)),
        get(&sim, who, Some(&second)),
        get(&sim, who, Some("not-a-token")),
    ])
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 401]);
    assert_eq!(sim.peak_concurrency(), 5);
    let mut per_token = sim.peak_concurrency_per_token();
    per_token.sort_unstable();
    assert_eq!(per_token, [1, 1, 3]);
    sim.shutdown().await;
}

#[test]
fn token_paths_name_the_tenant() {
    assert_eq!(
        token_tenant("/sim-tenant/oauth2/v2.0/token"),
        Some("sim-tenant")
    );
    assert_eq!(token_tenant("/oauth2/v2.0/token"), None);
    assert_eq!(token_tenant("//oauth2/v2.0/token"), None);
    assert_eq!(token_tenant("/t/oauth2/v2.0/authorize"), None);
    assert_eq!(token_tenant("/t/oauth2/v2.0/devicecode"), None);
    assert_eq!(
        identity_endpoint("/t/oauth2/v2.0/devicecode"),
        Some(("t", IdentityEndpoint::DeviceCode))
    );
    assert_eq!(
        identity_endpoint("/t/oauth2/v2.0/token"),
        Some(("t", IdentityEndpoint::Token))
    );
    assert_eq!(identity_endpoint("//oauth2/v2.0/devicecode"), None);
}

async fn signed_in(sim: &RunningSimulator) -> String {
    token(sim, "sim-secret").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn get_with(
    sim: &RunningSimulator,
    path_and_query: &str,
    token: &str,
    prefer: Option<&str>,
) -> Reply {
    let prefer = prefer
        .map(|p| format!("Prefer: {p}\r\n"))
        .unwrap_or_default();
    send(
        sim.address(),
        format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n{prefer}Authorization: Bearer {token}\r\nConnection: close\r\n\r\n",
            sim.address()
        ),
    )
    .await
}

/// One `GET` part: the target and the part's own `Prefer` header.
pub(super) fn get_part(target: &str, prefer: Option<&str>) -> String {
    let prefer = prefer
        .map(|p| format!("Prefer: {p}\r\n"))
        .unwrap_or_default();
    format!(
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET {target} HTTP/1.1\r\nAccept: application/json\r\n{prefer}\r\n"
    )
}

pub(super) fn batch_body(boundary: &str, parts: &[String]) -> String {
    let mut body = String::new();
    for part in parts {
        body.push_str(&format!("--{boundary}\r\n{part}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

pub(super) async fn post_batch(
    sim: &RunningSimulator,
    token: Option<&str>,
    prefer: Option<&str>,
    content_type: &str,
    body: &str,
) -> Reply {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let prefer = prefer
        .map(|p| format!("Prefer: {p}\r\n"))
        .unwrap_or_default();
    send(
        sim.address(),
        format!(
            "POST /api/data/v9.2/$batch HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nOData-MaxVersion: 4.0\r\nOData-Version: 4.0\r\n{auth}{prefer}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            sim.address(),
            body.len()
        ),
    )
    .await
}

#[derive(Debug)]
struct PartReply {
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl PartReply {
    fn status(&self) -> u16 {
        self.status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// The parts of a batch response, checking the documented framing.
fn batch_parts(reply: &Reply) -> Vec<PartReply> {
    let content_type = reply.header("content-type").unwrap();
    let boundary = content_type
        .strip_prefix("multipart/mixed; boundary=")
        .unwrap_or_else(|| panic!("{content_type}"));
    assert!(boundary.starts_with("batchresponse_"), "{boundary}");
    assert!(crate::data::is_guid(
        boundary.trim_start_matches("batchresponse_")
    ));
    assert_eq!(reply.header("odata-version"), Some("4.0"));
    let body = reply
        .body
        .strip_suffix(&format!("--{boundary}--\r\n"))
        .unwrap_or_else(|| panic!("{}", reply.body));
    body.split(&format!("--{boundary}\r\n"))
        .skip(1)
        .map(|chunk| {
            let chunk = chunk.strip_suffix("\r\n").unwrap();
            let (mime, http) = chunk.split_once("\r\n\r\n").unwrap();
            assert_eq!(
                mime,
                "Content-Type: application/http\r\nContent-Transfer-Encoding: binary"
            );
            let (head, body) = http.split_once("\r\n\r\n").unwrap();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap().to_string();
            let headers = lines
                .map(|l| l.split_once(": ").unwrap())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            PartReply {
                status_line,
                headers,
                body: body.to_string(),
            }
        })
        .collect()
}

fn encoded(value: &str) -> String {
    crate::format::cookie_encode(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_parts_answer_like_direct_requests() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let access = signed_in(&sim).await;
    let data = dataset();
    let view = data.view_by_name("Open Deals in Euro").unwrap();
    let annotations = "odata.include-annotations=\"*\"";
    // Relative to the service root, absolute path, absolute URL.
    let targets = [
        (
            format!(
                "accounts?$select=name,revenue&$filter={}&$orderby=name&$top=3",
                encoded("statecode eq 0")
            ),
            Some(annotations),
        ),
        ("/api/data/v9.2/WhoAmI".to_string(), None),
        (
            format!(
                "{}/api/data/v9.2/savedqueries({})?$select=name,modifiedon",
                sim.url(),
                view.id
            ),
            None,
        ),
        (
            format!("opportunities?fetchXml={}", encoded(&view.fetchxml)),
            Some(annotations),
        ),
    ];
    let parts: Vec<String> = targets
        .iter()
        .map(|(target, prefer)| get_part(target, *prefer))
        .collect();
    sim.clear_requests();
    let reply = post_batch(
        &sim,
        Some(&access),
        None,
        "multipart/mixed; boundary=\"batch_7f1d\"",
        &batch_body("batch_7f1d", &parts),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answers = batch_parts(&reply);
    assert_eq!(answers.len(), targets.len());
    // The log holds the batch as one request, with the multipart body's size.
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].method, "POST");
    assert!(recorded[0].path.ends_with("$batch"));
    assert_eq!(recorded[0].status, 200);
    assert!(recorded[0].authorized);
    assert_eq!(recorded[0].response_bytes, reply.body.len());

    for ((target, prefer), answer) in targets.iter().zip(&answers) {
        assert_eq!(answer.status_line, "HTTP/1.1 200 OK");
        assert_eq!(
            answer.header("content-type"),
            Some("application/json; odata.metadata=minimal")
        );
        assert_eq!(answer.header("odata-version"), Some("4.0"));
        let path = match target.strip_prefix(&sim.url()) {
            Some(path) => path.to_string(),
            None if target.starts_with('/') => target.clone(),
            None => format!("/api/data/v9.2/{target}"),
        };
        let direct = get_with(&sim, &path, &access, *prefer).await;
        assert_eq!(direct.status, 200, "{}", direct.body);
        assert_eq!(answer.json(), direct.json(), "{target}");
        assert_eq!(
            answer.header("preference-applied"),
            direct.header("preference-applied")
        );
    }
    // Annotations follow each part's own Prefer header.
    let accounts = answers[0].json();
    assert!(
        accounts["value"][0]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.ends_with("@OData.Community.Display.V1.FormattedValue"))
    );
    assert_eq!(
        answers[2].json()["modifiedon"],
        json!(view.modifiedon),
        "the view's modifiedon is selectable"
    );
    let euro = answers[3].json();
    assert!(!euro["value"].as_array().unwrap().is_empty());
    // Direct requests are recorded one each, with their body sizes.
    let direct = sim.requests();
    assert_eq!(direct.len(), 1 + targets.len());
    assert!(
        direct[1..]
            .iter()
            .all(|r| r.method == "GET" && r.status == 200 && r.response_bytes > 0)
    );

    // LF line endings and an unquoted boundary are accepted too.
    let lf = batch_body("batch_lf", &parts[1..2]).replace("\r\n", "\n");
    let reply = post_batch(
        &sim,
        Some(&access),
        None,
        "multipart/mixed;boundary=batch_lf",
        &lf,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        batch_parts(&reply)[0].json()["UserId"],
        json!(data.application_user_id)
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_failures_stop_the_batch_unless_told_to_continue() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let access = signed_in(&sim).await;
    let content_type = "multipart/mixed; boundary=\"batch_e\"";
    let missing = "accounts(00000000-0000-0000-0000-000000000001)?$select=name";
    let parts = [
        get_part("WhoAmI", None),
        get_part(missing, None),
        get_part("accounts?$select=Nope", None),
        get_part("accounts?$select=name&$top=1", None),
    ];
    let body = batch_body("batch_e", &parts);

    // Without continue-on-error: the first failure is the batch's answer.
    let stopped = post_batch(&sim, Some(&access), None, content_type, &body).await;
    assert_eq!(stopped.status, 404, "{}", stopped.body);
    let answers = batch_parts(&stopped);
    assert_eq!(answers.len(), 1, "only the failing part");
    assert_eq!(answers[0].status_line, "HTTP/1.1 404 Not Found");
    let error = answers[0].json();
    assert_eq!(error["error"]["code"], "0x80040217");
    assert_eq!(
        error,
        get_with(&sim, &format!("/api/data/v9.2/{missing}"), &access, None)
            .await
            .json()
    );

    // With it: every part runs, failures inside a 200.
    let continued = post_batch(
        &sim,
        Some(&access),
        Some("odata.continue-on-error"),
        content_type,
        &body,
    )
    .await;
    assert_eq!(continued.status, 200, "{}", continued.body);
    assert_eq!(
        continued.header("preference-applied"),
        Some("odata.continue-on-error")
    );
    let answers = batch_parts(&continued);
    let statuses: Vec<u16> = answers.iter().map(PartReply::status).collect();
    assert_eq!(statuses, [200, 404, 400, 200]);
    assert_eq!(answers[2].status_line, "HTTP/1.1 400 Bad Request");
    assert_eq!(answers[2].json()["error"]["code"], "0x0");

    // Writes and change sets are not implemented: 501 for that part.
    let unsupported = batch_body(
        "batch_e",
        &[
            "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nPOST /api/data/v9.2/tasks HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n{\"subject\":\"x\"}".to_string(),
            "Content-Type: multipart/mixed; boundary=changeset_1\r\n\r\n--changeset_1\r\nContent-Type: application/http\r\n\r\nPATCH accounts(00000000-0000-0000-0000-000000000001) HTTP/1.1\r\n\r\n{}\r\n--changeset_1--".to_string(),
            get_part("$batch", None),
            get_part("WhoAmI", None),
        ],
    );
    let reply = post_batch(
        &sim,
        Some(&access),
        Some("odata.continue-on-error"),
        content_type,
        &unsupported,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let statuses: Vec<u16> = batch_parts(&reply).iter().map(PartReply::status).collect();
    assert_eq!(statuses, [501, 501, 400, 200]);

    // The outer request carries the token; without it the whole batch is 401.
    sim.clear_requests();
    let anonymous = post_batch(&sim, None, None, content_type, &body).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["error"]["code"], "0x80040220");
    assert!(anonymous.header("www-authenticate").is_some());
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 1);
    assert!(!recorded[0].authorized);
    assert_eq!(recorded[0].status, 401);
    assert_eq!(recorded[0].response_bytes, anonymous.body.len());

    // Not multipart, unterminated, or more than 1000 parts: 400 for the batch.
    let not_multipart = post_batch(&sim, Some(&access), None, "application/json", "{}").await;
    assert_eq!(not_multipart.status, 400);
    let unterminated = post_batch(
        &sim,
        Some(&access),
        None,
        content_type,
        &format!("--batch_e\r\n{}", get_part("WhoAmI", None)),
    )
    .await;
    assert_eq!(unterminated.status, 400);
    let many: Vec<String> = (0..1001).map(|_| get_part("WhoAmI", None)).collect();
    let too_many = post_batch(
        &sim,
        Some(&access),
        None,
        content_type,
        &batch_body("batch_e", &many),
    )
    .await;
    assert_eq!(too_many.status, 400);
    assert!(
        too_many.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1000")
    );
    let as_get = get(&sim, "/api/data/v9.2/$batch", Some(&access)).await;
    assert_eq!(as_get.status, 405);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_replaces_the_whole_batch() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let access = signed_in(&sim).await;
    let body = batch_body(
        "batch_f",
        &[
            get_part("WhoAmI", None),
            get_part("WhoAmI", None),
            get_part("WhoAmI", None),
        ],
    );
    let content_type = "multipart/mixed; boundary=batch_f";
    sim.inject_fault(Fault::Status {
        status: 429,
        retry_after_seconds: Some(3),
    });
    let throttled = post_batch(&sim, Some(&access), None, content_type, &body).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after"), Some("3"));
    assert_eq!(throttled.json()["error"]["code"], "0x80072322");
    // One fault, one batch: the next batch runs every part.
    let normal = post_batch(&sim, Some(&access), None, content_type, &body).await;
    assert_eq!(normal.status, 200, "{}", normal.body);
    let statuses: Vec<u16> = batch_parts(&normal).iter().map(PartReply::status).collect();
    assert_eq!(statuses, [200, 200, 200]);
    sim.shutdown().await;
}

async fn aggregate_count(
    sim: &RunningSimulator,
    access: &str,
    set: &str,
    entity: &str,
    filter: &str,
) -> Reply {
    let fetch = format!(
        "<fetch aggregate='true'><entity name='{entity}'><attribute name='{entity}id' alias='n' aggregate='count'/>{filter}</entity></fetch>"
    );
    get_with(
        sim,
        &format!("/api/data/v9.2/{set}?fetchXml={}", encoded(&fetch)),
        access,
        None,
    )
    .await
}

fn count_of(reply: &Reply) -> i64 {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["value"][0]["n"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_hooks_change_one_simulator_only() {
    let a = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let b = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let (token_a, token_b) = (signed_in(&a).await, signed_in(&b).await);
    let data = dataset();
    let open = data.view_by_name("Open Opportunities").unwrap();
    let won = data.view_by_name("Won Opportunities").unwrap();
    let definition = |sim: &'static str, id: &str| {
        format!("/api/data/v9.2/{sim}({id})?$select=name,fetchxml,layoutxml,modifiedon")
    };
    let before = get_with(&a, &definition("savedqueries", &open.id), &token_a, None)
        .await
        .json();
    assert_eq!(before["modifiedon"], json!(open.modifiedon));
    let layout = "<grid name='resultset' object='3' jump='name' select='1' icon='1' preview='1'><row name='result' id='opportunityid'><cell name='name' width='300' /></row></grid>";
    a.update_view(&open.id.to_uppercase(), Some(&won.fetchxml), Some(layout));
    let after = get_with(&a, &definition("savedqueries", &open.id), &token_a, None)
        .await
        .json();
    assert_eq!(after["fetchxml"], json!(won.fetchxml));
    assert_eq!(after["layoutxml"], layout);
    assert_ne!(after["@odata.etag"], before["@odata.etag"]);
    let time = |v: &Value| crate::format::parse_datetime(v.as_str().unwrap()).unwrap();
    assert!(time(&after["modifiedon"]) > time(&before["modifiedon"]));
    // Twice within a second still moves it strictly forward.
    a.update_view(&open.id, None, None);
    let again = get_with(&a, &definition("savedqueries", &open.id), &token_a, None)
        .await
        .json();
    assert!(time(&again["modifiedon"]) > time(&after["modifiedon"]));
    assert_eq!(again["fetchxml"], json!(won.fetchxml), "None keeps a part");
    // Running the view runs the new definition.
    let won_count = data
        .rows("opportunity")
        .iter()
        .filter(|r| r["statecode"] == 1)
        .count();
    let by_view = get_with(
        &a,
        &format!("/api/data/v9.2/opportunities?savedQuery={}", open.id),
        &token_a,
        None,
    )
    .await;
    assert_eq!(by_view.json()["value"].as_array().unwrap().len(), won_count);
    // The other simulator and the shared data are untouched.
    let mut other = get_with(&b, &definition("savedqueries", &open.id), &token_b, None)
        .await
        .json();
    let mut before = before;
    for body in [&mut other, &mut before] {
        body.as_object_mut().unwrap().remove("@odata.context");
    }
    assert_eq!(other, before);
    assert_ne!(data.view(&open.id).unwrap().fetchxml, won.fetchxml);

    // A deleted view is gone everywhere: by id, in listings, run, in a batch.
    let hot = data.view_by_name("Hot Leads").unwrap();
    let mine = data.view_by_name("My Warm Leads").unwrap();
    a.delete_view(&hot.id);
    a.delete_view(&mine.id);
    let by_id = get_with(&a, &definition("savedqueries", &hot.id), &token_a, None).await;
    assert_eq!(by_id.status, 404);
    assert_eq!(by_id.json()["error"]["code"], "0x80040217");
    assert_eq!(
        get_with(&a, &definition("userqueries", &mine.id), &token_a, None)
            .await
            .status,
        404
    );
    let listing = |sim: &'static str| {
        format!(
            "/api/data/v9.2/{sim}?$select=name&$filter={}",
            encoded("returnedtypecode eq 'lead'")
        )
    };
    let names = |reply: Reply| -> Vec<String> {
        reply.json()["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    let listed = names(get_with(&a, &listing("savedqueries"), &token_a, None).await);
    assert!(!listed.is_empty() && !listed.contains(&hot.name));
    assert!(
        names(get_with(&b, &listing("savedqueries"), &token_b, None).await).contains(&hot.name)
    );
    assert!(names(get_with(&a, &listing("userqueries"), &token_a, None).await).is_empty());
    let run = get_with(
        &a,
        &format!("/api/data/v9.2/leads?savedQuery={}", hot.id),
        &token_a,
        None,
    )
    .await;
    assert_eq!(run.status, 404);
    let batch = post_batch(
        &a,
        Some(&token_a),
        Some("odata.continue-on-error"),
        "multipart/mixed; boundary=batch_d",
        &batch_body(
            "batch_d",
            &[
                get_part(&format!("savedqueries({})?$select=name", hot.id), None),
                get_part(&format!("savedqueries({})?$select=name", won.id), None),
            ],
        ),
    )
    .await;
    let statuses: Vec<u16> = batch_parts(&batch).iter().map(PartReply::status).collect();
    assert_eq!(statuses, [404, 200]);
    assert_eq!(
        get_with(&b, &definition("savedqueries", &hot.id), &token_b, None)
            .await
            .status,
        200
    );
    assert!(data.view(&hot.id).is_some());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_and_row_hooks_change_one_simulator_only() {
    let a = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let b = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let (token_a, token_b) = (signed_in(&a).await, signed_in(&b).await);
    let data = dataset();

    // A deleted column leaves the metadata, and FetchXML naming it fails.
    a.delete_attribute("account", "revenue");
    let attributes = |sim: &RunningSimulator, token: &str| {
        let path = "/api/data/v9.2/EntityDefinitions(LogicalName='account')/Attributes?$select=LogicalName".to_string();
        let token = token.to_string();
        let address = sim.address();
        async move {
            let reply = send(
                address,
                format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"),
            )
            .await;
            reply.json()["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["LogicalName"].as_str().unwrap().to_string())
                .collect::<Vec<String>>()
        }
    };
    let in_a = attributes(&a, &token_a).await;
    assert!(!in_a.contains(&"revenue".to_string()));
    assert!(
        !in_a.contains(&"revenue_base".to_string()),
        "the twin goes too"
    );
    assert!(in_a.contains(&"name".to_string()));
    assert!(
        attributes(&b, &token_b)
            .await
            .contains(&"revenue".to_string())
    );
    let single = get_with(
        &a,
        "/api/data/v9.2/EntityDefinitions(LogicalName='account')/Attributes(LogicalName='revenue')",
        &token_a,
        None,
    )
    .await;
    assert_eq!(single.status, 404);
    let fetch = "<fetch><entity name='account'><attribute name='name'/><attribute name='revenue'/></entity></fetch>";
    let path = format!("/api/data/v9.2/accounts?fetchXml={}", encoded(fetch));
    let failed = get_with(&a, &path, &token_a, None).await;
    assert_eq!(failed.status, 400);
    assert_eq!(
        failed.json()["error"],
        json!({
            "code": "0x80041103",
            "message": "'account' entity doesn't contain attribute with Name = 'revenue' and NameMapping = 'Logical'."
        })
    );
    let view = data.view_by_name("Accounts with Revenue").unwrap();
    let run = get_with(
        &a,
        &format!("/api/data/v9.2/accounts?savedQuery={}", view.id),
        &token_a,
        None,
    )
    .await;
    assert_eq!(run.json()["error"]["code"], "0x80041103");
    assert_eq!(get_with(&b, &path, &token_b, None).await.status, 200);
    assert!(
        data.entity("account")
            .unwrap()
            .attribute("revenue")
            .is_some()
    );

    // Added rows are seen by every query of that simulator.
    let company = "Overlay Test Company";
    let added: Vec<Row> = (0..3)
        .map(|i| {
            let mut row = Row::new();
            row.insert(
                "leadid".to_string(),
                json!(format!("0000000{i}-0000-4000-8000-00000000abcd")),
            );
            row.insert("fullname".to_string(), json!(format!("Added Lead {i}")));
            row.insert("companyname".to_string(), json!(company));
            row.insert("statecode".to_string(), json!(0));
            row.insert("statuscode".to_string(), json!(1));
            row.insert("leadqualitycode".to_string(), json!(1));
            row.insert("createdon".to_string(), json!("2025-06-01T12:00:00Z"));
            row
        })
        .collect();
    let hot = "<filter><condition attribute='statecode' operator='eq' value='0'/><condition attribute='leadqualitycode' operator='eq' value='1'/></filter>";
    let hot_before = count_of(&aggregate_count(&a, &token_a, "leads", "lead", hot).await);
    a.add_rows("lead", added);
    assert_eq!(
        count_of(&aggregate_count(&a, &token_a, "leads", "lead", hot).await),
        hot_before + 3
    );
    assert_eq!(
        count_of(&aggregate_count(&b, &token_b, "leads", "lead", hot).await),
        hot_before
    );
    let by_company = format!(
        "/api/data/v9.2/leads?$select=fullname&$filter={}",
        encoded(&format!("companyname eq '{company}'"))
    );
    let found = get_with(&a, &by_company, &token_a, None).await.json();
    assert_eq!(found["value"].as_array().unwrap().len(), 3);
    let one = "/api/data/v9.2/leads(00000001-0000-4000-8000-00000000abcd)?$select=fullname";
    assert_eq!(
        get_with(&a, one, &token_a, None).await.json()["fullname"],
        "Added Lead 1"
    );
    assert_eq!(get_with(&b, one, &token_b, None).await.status, 404);
    assert_eq!(data.rows("lead").len(), 60_000);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_hooks_change_one_simulator_only() {
    let a = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let b = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let (token_a, token_b) = (signed_in(&a).await, signed_in(&b).await);
    let data = dataset();
    let pipeline = data.chart_by_name("Pipeline by Status Reason").unwrap();
    let leads = data.chart_by_name("Leads by Source").unwrap();
    let chart = |id: &str| {
        format!(
            "/api/data/v9.2/savedqueryvisualizations({id})?$select=name,datadescription,modifiedon"
        )
    };
    let before = get_with(&a, &chart(&pipeline.id), &token_a, None)
        .await
        .json();
    assert_eq!(before["datadescription"], json!(pipeline.datadescription));
    let changed = pipeline
        .datadescription
        .replace("aggregate=\"sum\"", "aggregate=\"avg\"");
    a.update_chart(&pipeline.id.to_uppercase(), &changed);
    a.delete_chart(&leads.id);
    let after = get_with(&a, &chart(&pipeline.id), &token_a, None)
        .await
        .json();
    assert_eq!(after["datadescription"], json!(changed));
    assert_ne!(after["@odata.etag"], before["@odata.etag"]);
    let time = |v: &Value| crate::format::parse_datetime(v.as_str().unwrap()).unwrap();
    assert!(time(&after["modifiedon"]) > time(&before["modifiedon"]));
    let gone = get_with(&a, &chart(&leads.id), &token_a, None).await;
    assert_eq!(gone.status, 404);
    let listing = format!(
        "/api/data/v9.2/savedqueryvisualizations?$select=name&$filter={}",
        encoded("primaryentitytypecode eq 'lead'")
    );
    let count = |reply: Reply| reply.json()["value"].as_array().unwrap().len();
    assert_eq!(count(get_with(&a, &listing, &token_a, None).await), 0);
    assert_eq!(count(get_with(&b, &listing, &token_b, None).await), 1);
    let other = get_with(&b, &chart(&pipeline.id), &token_b, None)
        .await
        .json();
    assert_eq!(other["datadescription"], json!(pipeline.datadescription));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_sets_are_served_over_http() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let token = signed_in(&sim).await;
    let path = "/api/data/v9.2/EntityDefinitions(LogicalName=%27opportunity%27)/Attributes(LogicalName=%27statuscode%27)/Microsoft.Dynamics.CRM.StatusAttributeMetadata";
    let options = format!(
        "{path}?$select=LogicalName&$expand={}",
        encoded("OptionSet($select=Options)")
    );
    let reply = get_with(&sim, &options, &token, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let won = reply.json()["OptionSet"]["Options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["Value"] == 3)
        .map(|o| o["Label"]["UserLocalizedLabel"]["Label"].clone());
    assert_eq!(won, Some(json!("Won")));
    let wrong = get_with(
        &sim,
        &path.replace("StatusAttributeMetadata", "PicklistAttributeMetadata"),
        &token,
        None,
    )
    .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json()["error"]["message"],
        "The attribute 'statuscode' is not of type PicklistAttributeMetadata."
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "RunningSimulator::delete_view")]
async fn hooks_refuse_unknown_targets() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    sim.delete_view("00000000-0000-0000-0000-000000000001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_bytes_hook_answers_with_and_without_content_length() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let sized = get(&sim, "/test/bytes/70000", None).await;
    assert_eq!(sized.status, 200);
    assert_eq!(sized.header("content-length"), Some("70000"));
    assert_eq!(sized.header("transfer-encoding"), None);
    assert_eq!(sized.body, "a".repeat(70_000));

    let chunked = get(&sim, "/test/bytes/70000?chunked=1", None).await;
    assert_eq!(chunked.status, 200);
    assert_eq!(chunked.header("content-length"), None);
    assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
    assert_eq!(chunked.body, "a".repeat(70_000));

    assert_eq!(get(&sim, "/test/bytes/0", None).await.body, "");
    assert_eq!(get(&sim, "/test/bytes/many", None).await.status, 400);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_name_the_origin_the_client_addressed() {
    let sim = RunningSimulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default())
        .await
        .unwrap();
    let token = signed_in(&sim).await;
    let origin = format!("http://dataverse.example:{}", sim.address().port());
    let reply = send(
        sim.address(),
        format!(
            "GET /api/data/v9.2/contacts?$select=fullname HTTP/1.1\r\nHost: dataverse.example:{}\r\nAccept: application/json\r\nPrefer: odata.maxpagesize=10\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
            sim.address().port()
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    for link in ["@odata.context", "@odata.nextLink"] {
        let url = body[link].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{origin}/api/data/v9.2/")),
            "{link}: {url}"
        );
    }

    // Addressed by its own address, it names that one.
    let unnamed = get_with(
        &sim,
        "/api/data/v9.2/contacts?$select=fullname",
        &token,
        None,
    )
    .await;
    assert!(
        unnamed.json()["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with(&sim.url())
    );
    sim.shutdown().await;
}
