//! The server over real loopback HTTP/1.1, with a hand-written client.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
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

async fn send(address: SocketAddr, request: String) -> Reply {
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

async fn get(sim: &RunningSimulator, path_and_query: &str, token: Option<&str>) -> Reply {
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

async fn token(sim: &RunningSimulator, secret: &str) -> Reply {
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
}
