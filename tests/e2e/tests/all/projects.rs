//! Projects: linked, synced, scheduled and shown through the same code as Key
//! Results, under a parent Key Result, from the CLI and the HTTP API.

use crate::api::{Served, token};
use goals_e2e::{CREATE_KR, Cli, HOT_LEADS_METRIC, Sim, hot_leads};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// `project link P` to the count of Hot Leads through `sim`.
fn link_project<'a>(project: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [
        &[
            "project",
            "link",
            project,
            "--connection",
            "sim",
            "--app",
            "Sales Hub",
        ][..],
        &HOT_LEADS_METRIC,
        extra,
    ]
    .concat()
}

#[tokio::test]
async fn a_project_is_linked_synced_and_scheduled_like_a_key_result() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = cli.json(&CREATE_KR).await["id"].to_string();

    // Created under the Key Result, named by title.
    let created = cli
        .json(&[
            "project",
            "create",
            "--title",
            "Partner campaign",
            "--owner",
            "ben",
            "--start",
            "0",
            "--target",
            "10000",
            "--parent",
            "Work hot leads",
            "--due-date",
            "2027-03-31",
        ])
        .await;
    assert_eq!(created["kind"], "project", "{created}");
    assert_eq!(created["parent_id"].to_string(), kr);
    assert_eq!(created["due_date"], "2027-03-31");
    let project = created["id"].to_string();

    // Linked: the same metric, the same value, named as a Project.
    let linked = cli.run(&link_project(&project, &["--json"])).await;
    assert!(linked.success(), "{}", linked.stderr);
    let linked = linked.json();
    assert_eq!(linked["run"]["status"], "success", "{linked}");
    assert_eq!(linked["project"]["current_value"], json!(hot_leads()));
    assert!(linked.get("key_result").is_none(), "{linked}");

    // Each list holds its own kind.
    let projects = cli.json(&["project", "list"]).await;
    let ids: Vec<String> = projects
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["id"].to_string())
        .collect();
    assert_eq!(ids, std::slice::from_ref(&project));
    let krs = cli.json(&["kr", "list"]).await;
    assert!(
        krs.as_array()
            .expect("a list")
            .iter()
            .all(|k| k["kind"] == "key-result" && k["id"] != created["id"]),
        "{krs}"
    );
    let table = cli.run(&["project", "list"]).await.stdout;
    assert!(
        table.contains("PARENT") && table.contains("2027-03-31"),
        "{table}"
    );

    // The details name the parent and the due date.
    let shown = cli.run(&["project", "show", &project]).await.stdout;
    assert!(
        shown.starts_with(&format!("Project {project}: Partner campaign"))
            && shown.contains(&format!("parent          Key Result {kr}: Work hot leads"))
            && shown.contains("due             2027-03-31"),
        "{shown}"
    );
    let details = cli.json(&["project", "show", &project]).await;
    assert_eq!(details["project"]["id"].to_string(), project, "{details}");
    assert_eq!(details["link"]["view_name"], "Hot Leads");

    // A Project's id is no Key Result, and the other way round.
    let wrong = cli.run(&["kr", "show", &project, "--json"]).await;
    assert_eq!(wrong.output.status.code(), Some(3), "{}", wrong.stderr);
    let message = wrong.json()["error"]["message"].to_string();
    assert!(
        message.contains("is a Project") && message.contains("goals-host project"),
        "{message}"
    );
    let wrong = cli.run(&["project", "sync", &kr]).await;
    assert_eq!(wrong.output.status.code(), Some(3), "{}", wrong.stderr);

    // Sync now, check-in, pause and resume, as `kr` does.
    let synced = cli.json(&["project", "sync", &project]).await;
    assert_eq!(synced["run"]["status"], "success", "{synced}");
    let paused = cli.json(&["project", "pause", &project]).await;
    assert_eq!(paused["state"], "paused");
    let checked = cli.json(&["project", "checkin", &project, "42"]).await;
    assert_eq!(checked["current_value"], json!(42.0));
    cli.advance_clock(7200);
    let once = cli.json(&["run", "--once"]).await;
    assert_eq!(once["started"], 0, "a paused Project is not due: {once}");
    assert_eq!(
        cli.json(&["project", "show", &project]).await["project"]["current_value"],
        json!(42.0),
        "a paused Project keeps its check-in"
    );
    let resumed = cli.json(&["project", "resume", &project]).await;
    assert_eq!(resumed["state"], "active");
    let once = cli.json(&["run", "--once"]).await;
    assert_eq!(once["started"], 1, "the resumed Project is due: {once}");
    let history = cli.json(&["project", "history", &project]).await;
    let triggers: Vec<&str> = history
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["trigger"].as_str())
        .collect();
    assert_eq!(triggers, ["scheduled", "manual", "manual"], "{history}");
    assert_eq!(
        cli.json(&["project", "show", &project]).await["project"]["current_value"],
        json!(hot_leads())
    );

    // Unlinked, the value stays; a stale alert would name it a Project.
    let unlinked = cli.json(&["project", "unlink", &project]).await;
    assert_eq!(unlinked["current_value"], json!(hot_leads()));
    let not_linked = cli.run(&["project", "pause", &project]).await;
    assert_eq!(not_linked.output.status.code(), Some(2));
    assert!(
        not_linked
            .stderr
            .contains(&format!("Project {project} is not linked")),
        "{}",
        not_linked.stderr
    );
}

#[tokio::test]
async fn a_project_needs_a_key_result_of_its_organization_and_a_calendar_date() {
    let cli = Cli::new();
    cli.json(&CREATE_KR).await;
    let project = |extra: &[&'static str]| {
        let mut args = vec![
            "project", "create", "--title", "Launch", "--owner", "ana", "--start", "0", "--target",
            "1", "--json",
        ];
        args.extend_from_slice(extra);
        args
    };
    let missing = cli.run(&project(&["--parent", "No such goal"])).await;
    assert_eq!(missing.output.status.code(), Some(3), "{}", missing.stderr);
    let date = cli.run(&project(&["--due-date", "2027-02-30"])).await;
    assert_eq!(date.output.status.code(), Some(2), "{}", date.stderr);
    assert!(
        date.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("2027-02-30") && m.contains("YYYY-MM-DD")),
        "{}",
        date.stdout
    );
    let created = cli.run(&project(&[])).await;
    assert!(created.success(), "{}", created.stderr);
    assert_eq!(created.json()["parent_id"], json!(null));
    // Nothing half-written: only the valid one exists.
    let listed = cli.json(&["project", "list"]).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

#[tokio::test]
async fn the_api_carries_projects_wherever_it_carries_key_results() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let member = token(&cli, &["--org", "default"], "member").await;
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let conn = api.add_connection(&sim, "sim", &admin).await;
    let hot = api.hot_leads(&conn, &member).await;
    let kr = api
        .ok(
            Method::POST,
            "/api/v1/organizations/1/key-results",
            &member,
            Some(crate::api::KR("Hot leads")),
        )
        .await;
    let mut body = crate::api::KR("Partner campaign");
    body["parent_id"] = kr["id"].clone();
    body["due_date"] = json!("2027-03-31");
    let (status, project) = api
        .call(
            Method::POST,
            "/api/v1/organizations/1/projects",
            Some(&member),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(project["kind"], "project");
    let id = project["id"].as_i64().expect("id");

    let linked = api
        .ok(
            Method::PUT,
            &format!("/api/v1/projects/{id}/link"),
            &member,
            Some(hot.link(&conn)),
        )
        .await;
    assert_eq!(linked["project"]["current_value"], json!(hot_leads()));
    let synced = api
        .ok(
            Method::POST,
            &format!("/api/v1/projects/{id}/sync"),
            &member,
            None,
        )
        .await;
    assert_eq!(synced["run"]["status"], "success", "{synced}");
    let listed = api
        .ok(
            Method::GET,
            "/api/v1/organizations/1/projects",
            &member,
            None,
        )
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["link"]["connection_id"], json!(conn));
    let krs = api
        .ok(
            Method::GET,
            "/api/v1/organizations/1/key-results",
            &member,
            None,
        )
        .await;
    assert_eq!(krs.as_array().map(Vec::len), Some(1), "{krs}");
    let details = api
        .ok(
            Method::GET,
            &format!("/api/v1/projects/{id}"),
            &member,
            None,
        )
        .await;
    assert_eq!(details["project"]["due_date"], "2027-03-31", "{details}");
    let history = api
        .ok(
            Method::GET,
            &format!("/api/v1/projects/{id}/history"),
            &member,
            None,
        )
        .await;
    assert_eq!(history["runs"].as_array().map(Vec::len), Some(2));

    // A Project is not found as a Key Result, nor a Key Result as a Project.
    let (status, problem) = api
        .call(
            Method::GET,
            &format!("/api/v1/key-results/{id}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/projects/{}/sync", kr["id"]),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A Key Result refuses a due date.
    let mut dated = crate::api::KR("Dated");
    dated["due_date"] = json!("2027-03-31");
    let (status, problem) = api
        .call(
            Method::POST,
            "/api/v1/organizations/1/key-results",
            Some(&member),
            Some(dated),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

    let checked = api
        .ok(
            Method::POST,
            &format!("/api/v1/projects/{id}/check-in"),
            &member,
            Some(json!({"value": 7})),
        )
        .await;
    assert_eq!(checked["current_value"], json!(7.0));
    let patched = api
        .ok(
            Method::PATCH,
            &format!("/api/v1/projects/{id}"),
            &member,
            Some(json!({"due_date": "2027-06-30"})),
        )
        .await;
    assert_eq!(patched["due_date"], "2027-06-30");
    api.ok(
        Method::DELETE,
        &format!("/api/v1/projects/{id}/link"),
        &member,
        None,
    )
    .await;
    api.ok(
        Method::DELETE,
        &format!("/api/v1/projects/{id}"),
        &member,
        None,
    )
    .await;
    let listed = api
        .ok(
            Method::GET,
            "/api/v1/organizations/1/projects",
            &member,
            None,
        )
        .await;
    assert_eq!(listed, json!([]));
}
