//! The web console in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, over WebDriver), against `goals-host serve` and the
//! simulator. Each screen is saved as a PNG under the test's output directory.

use crate::api::{KR, Served, connection_body, find, token};
use fantoccini::{Client, ClientBuilder, Locator};
use goals_e2e::{Cli, Sim, hot_leads};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium driven through its own chromedriver on a free loopback port.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    shots: PathBuf,
}

impl Browser {
    /// The browser, or `None` (saying why) where Chromium is not installed;
    /// under GOALS_E2E_REQUIRE_ALL (as in `.ci/run`) its absence fails.
    async fn start(test: &str) -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            let reason = format!(
                "{test}: skipped: the console's browser tests need {CHROMIUM} and {CHROMEDRIVER} \
                 (apt-get install chromium chromium-driver)"
            );
            assert!(
                std::env::var_os("GOALS_E2E_REQUIRE_ALL").is_none(),
                "{reason}"
            );
            eprintln!("{reason}");
            return None;
        }
        let mut driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let mut lines = BufReader::new(driver.stdout.take().expect("stdout")).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .expect("chromedriver starts within 30 s")
        .expect("chromedriver names its port");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-US"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session");
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("console-screenshots")
            .join(test);
        std::fs::create_dir_all(&shots).expect("the screenshot directory");
        Some(Browser {
            client,
            _driver: driver,
            shots,
        })
    }

    /// Saves the page, from its top, as NAME.png, after checking that every
    /// control on it has a name a screen reader can read.
    async fn shot(&self, name: &str) {
        let unnamed = self.script(UNNAMED_CONTROLS).await;
        assert_eq!(unnamed, json!([]), "{name}: controls without a label");
        self.script("window.scrollTo(0, 0); return true").await;
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("save the screenshot");
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("open the page");
    }

    /// The element `css` once it is there (the console renders after its
    /// requests answer).
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} appears: {e}"))
    }

    async fn click(&self, css: &str) {
        self.element(css).await.click().await.expect("click");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.element(css).await;
        field.clear().await.expect("clear the field");
        field.send_keys(text).await.expect("type");
    }

    async fn select(&self, css: &str, value: &str) {
        self.element(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// The text of `css` once `ready` holds for it.
    async fn text_when(&self, css: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if ready(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} never got there: {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn script(&self, code: &str) -> Value {
        self.client
            .execute(code, Vec::new())
            .await
            .expect("run a script")
    }

    /// Clicks the wizard's Next and waits for `next` (the next step's control):
    /// the API requests the step made.
    async fn wizard_step(&self, next: &str) -> usize {
        self.script("performance.clearResourceTimings(); return true")
            .await;
        self.click("#wizard-next").await;
        self.element(next).await;
        self.script(API_REQUESTS)
            .await
            .as_array()
            .map_or(0, Vec::len)
    }

    /// Walks the wizard from its first step to the count of Hot Leads through
    /// `conn`, and previews it (Save waits for the preview).
    async fn wizard_to_hot_leads(&self, conn: &str, hot: &crate::api::HotLeads) {
        self.select("#wizard-connection", conn).await;
        self.wizard_step("#wizard-app").await;
        self.select("#wizard-app", &hot.app).await;
        self.wizard_step("#wizard-entity").await;
        self.select("#wizard-entity", "lead").await;
        self.wizard_step("#wizard-view option").await;
        self.select("#wizard-view", &hot.view).await;
        self.wizard_step("#wizard-column option").await;
        self.select("#wizard-column", "fullname").await;
        self.wizard_step("#wizard-aggregation").await;
        self.select("#wizard-aggregation", "count").await;
        self.wizard_step("#wizard-preview").await;
        self.click("#wizard-preview").await;
        self.text_when("#wizard-preview-value", |t| {
            t.contains(&grouped(hot_leads()))
        })
        .await;
    }

    async fn sign_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/#/sign-in")).await;
        self.type_into("#token", token).await;
        self.click("#sign-in").await;
        self.element("#sign-out").await;
    }
}

/// A number as the console shows it in en-US: with thousands separators.
fn grouped(value: f64) -> String {
    let digits = format!("{}", value.round() as i64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const XSS: &str = "<img src=x onerror=alert(1)>";

/// Form controls and buttons without an accessible name: no label, no
/// aria-label or aria-labelledby, no text.
const UNNAMED_CONTROLS: &str =
    "return [...document.querySelectorAll('input, select, textarea, button')]
    .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length)
        && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')
        && !(e.tagName === 'BUTTON' && e.textContent.trim()))
    .map(e => e.outerHTML.slice(0, 120))";

/// The API requests the page made since its timings were last cleared: [url, ms].
const API_REQUESTS: &str = "return performance.getEntriesByType('resource')
    .filter(e => e.name.includes('/api/v1/') || e.name.includes('/console/session'))
    .map(e => [e.name, Math.round(e.duration * 10) / 10])";

/// Navigation start to the load event of the last full page load, in ms.
const PAGE_LOAD_MS: &str = "const n = performance.getEntriesByType('navigation')[0];
    return n ? Math.round(n.loadEventEnd) : null";

#[tokio::test]
async fn the_seed_flow_runs_in_the_console() {
    let Some(browser) = Browser::start("seed_flow").await else {
        return;
    };
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--poll", "0.2"]).await;
    let base = api.base.clone();

    // Sign-in: nothing but the form before it.
    browser.goto(&base).await;
    browser.element("#token").await;
    browser.shot("01-sign-in").await;
    browser.sign_in(&base, &admin).await;
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    assert!(
        cookies
            .iter()
            .any(|c| c.name() == "goals_session" && c.http_only() == Some(true)),
        "{cookies:?}"
    );
    let storage = browser
        .script(
            "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + location.href",
        )
        .await;
    assert!(!storage.to_string().contains(&admin), "{storage}");

    // Admin: the organization's switch goes off and on again, a connection
    // is added through the form the integration's settings describe.
    browser.goto(&format!("{base}/#/orgs/1/admin")).await;
    for enabled in [false, true] {
        browser
            .text_when("#integration-status", |t| !t.is_empty())
            .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while browser
            .script("return document.getElementById('org-integration').disabled")
            .await
            != json!(false)
        {
            assert!(Instant::now() < deadline, "the switch becomes usable");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        browser.click("#org-integration").await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let org = api
                .ok(Method::GET, "/api/v1/organizations/1", &admin, None)
                .await;
            if org["integration_enabled"] == enabled {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the switch reached the API: {org}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    browser.type_into("#conn-name", "Contoso").await;
    browser
        .type_into("#conn-setting-environment_url", &sim.url())
        .await;
    browser
        .type_into("#conn-setting-tenant", &sim.config.tenant)
        .await;
    browser
        .type_into("#conn-setting-client_id", &sim.config.client_id)
        .await;
    browser
        .type_into("#conn-client-secret", &sim.config.client_secret)
        .await;
    browser
        .type_into("#conn-setting-authority_url", &sim.url())
        .await;
    browser.click("#conn-allow-loopback").await;
    browser.click("#conn-add").await;
    let added = browser
        .element("#connection-list li[data-connection-id]")
        .await;
    let conn = added
        .attr("data-connection-id")
        .await
        .expect("an attribute")
        .expect("a connection id");
    browser.shot("02-admin").await;
    // Disabled with a reason, then enabled again.
    browser
        .type_into(&format!("#conn-{conn}-reason"), "rotating the secret")
        .await;
    browser.click(&format!("#conn-{conn}-disable")).await;
    browser.element(&format!("#conn-{conn}-enable")).await;
    let disabled = api
        .ok(
            Method::GET,
            &format!("/api/v1/connections/{conn}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(disabled["status"], "disabled", "{disabled}");
    assert!(
        disabled["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("rotating the secret"))
    );
    browser.click(&format!("#conn-{conn}-enable")).await;
    browser.element(&format!("#conn-{conn}-disable")).await;
    let page = browser.client.source().await.expect("the page");
    assert!(
        !page.contains(&sim.config.client_secret),
        "no secret in the page"
    );

    // A view with markup for a name shows as text.
    let views = api
        .ok(
            Method::GET,
            &format!("/api/v1/connections/{conn}/entities/lead/views"),
            &admin,
            None,
        )
        .await;
    let renamed = views
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] != "Hot Leads"))
        .expect("another lead view")["id"]
        .as_str()
        .expect("an id")
        .to_string();
    sim.server.rename_view(&renamed, XSS);

    // A Key Result, linked through the wizard.
    browser
        .goto(&format!("{base}/#/orgs/1/key-results/new"))
        .await;
    browser.type_into("#kr-title", "Work the hot leads").await;
    browser.type_into("#kr-owner", "ana@contoso.com").await;
    browser.select("#kr-unit", "number").await;
    browser.type_into("#kr-start", "0").await;
    browser.type_into("#kr-target", "10000").await;
    browser.click("#kr-progress-auto").await;
    browser.shot("03-new-key-result").await;
    browser.click("#kr-save").await;

    // Each step of the wizard is one request.
    browser.select("#wizard-connection", &conn).await;
    assert_eq!(browser.wizard_step("#wizard-app").await, 1, "apps");
    let apps = api
        .ok(
            Method::GET,
            &format!("/api/v1/connections/{conn}/apps"),
            &admin,
            None,
        )
        .await;
    let app = find(&apps, "name", "Sales Hub")["id"]
        .as_str()
        .expect("app")
        .to_string();
    browser.select("#wizard-app", &app).await;
    assert_eq!(browser.wizard_step("#wizard-entity").await, 1, "entities");
    browser.select("#wizard-entity", "lead").await;
    assert_eq!(browser.wizard_step("#wizard-view option").await, 1, "views");
    let everything = browser.text_when("#wizard-view", |t| !t.is_empty()).await;
    assert!(
        everything.contains(XSS),
        "the markup shows as text: {everything}"
    );
    let images = browser
        .script("return document.querySelectorAll('img[src=\"x\"]').length")
        .await;
    assert_eq!(images, json!(0), "the view's name made no element");
    browser.shot("04-wizard-views").await;
    browser.type_into("#wizard-view-search", "hot").await;
    let narrowed = browser
        .text_when("#wizard-view", |t| !t.is_empty() && !t.contains(XSS))
        .await;
    assert!(
        narrowed.lines().all(|v| v.to_lowercase().contains("hot")),
        "{narrowed}"
    );
    let hot = find(&views, "name", "Hot Leads")["id"]
        .as_str()
        .expect("view")
        .to_string();
    browser.select("#wizard-view", &hot).await;
    // The view's columns, and the table's charts whose measures it offers too.
    assert_eq!(
        browser.wizard_step("#wizard-column option").await,
        2,
        "columns and charts"
    );
    browser.select("#wizard-column", "fullname").await;
    // The aggregations come with the columns: no request.
    assert_eq!(
        browser.wizard_step("#wizard-aggregation").await,
        0,
        "aggregations"
    );
    browser.select("#wizard-aggregation", "count").await;
    assert_eq!(
        browser.wizard_step("#wizard-preview").await,
        0,
        "to the preview"
    );
    browser
        .script("performance.clearResourceTimings(); return true")
        .await;
    browser.click("#wizard-preview").await;
    let preview = browser
        .text_when("#wizard-preview-value", |t| {
            t.chars().any(|c| c.is_ascii_digit())
        })
        .await;
    let measured = api
        .ok(
            Method::POST,
            &format!("/api/v1/connections/{conn}/measurements"),
            &admin,
            Some(
                json!({"entity": "lead", "view_id": hot, "column": "fullname",
                        "aggregation": "count"}),
            ),
        )
        .await;
    assert_eq!(measured["value"], json!(hot_leads()));
    assert!(preview.contains(&grouped(hot_leads())), "{preview}");
    let preview_requests = browser.script(API_REQUESTS).await;
    assert_eq!(
        preview_requests.as_array().map(Vec::len),
        Some(1),
        "{preview_requests}"
    );
    browser.shot("05-wizard-preview").await;
    browser.click("#wizard-save").await;

    // The details: value, then Sync now.
    let value = browser
        .text_when("#details-value", |t| t.contains(&grouped(hot_leads())))
        .await;
    assert!(value.contains(&grouped(hot_leads())), "{value}");
    browser.click("#sync-now").await;
    browser
        .text_when("#details-status", |t| t.starts_with("Synced"))
        .await;
    browser.element("#history-chart").await;
    browser.shot("06-details").await;

    // The list: the icon by the bar; a scheduled sync that finds more hot
    // leads updates it without a reload.
    let krs = api
        .ok(
            Method::GET,
            "/api/v1/organizations/1/key-results",
            &admin,
            None,
        )
        .await;
    let kr = find(&krs, "title", "Work the hot leads")["id"]
        .as_i64()
        .expect("kr");
    browser.goto(&format!("{base}/#/orgs/1/key-results")).await;
    browser.element(&format!("#kr-{kr}-d365")).await;
    browser.shot("07-key-results").await;
    // The list is one API request, whether reached in the console or loaded
    // afresh (the fresh load also asks who is signed in and their organizations).
    browser.goto(&format!("{base}/#/key-results/{kr}")).await;
    browser.element("#sync-now").await;
    browser
        .script("performance.clearResourceTimings(); location.hash = '#/orgs/1/key-results'; return true")
        .await;
    browser.element(&format!("#kr-{kr}-d365")).await;
    let in_app = browser.script(API_REQUESTS).await;
    assert_eq!(in_app.as_array().map(Vec::len), Some(1), "{in_app}");
    browser.goto("about:blank").await;
    browser.goto(&format!("{base}/#/orgs/1/key-results")).await;
    browser.element(&format!("#kr-{kr}-d365")).await;
    let fresh = browser.script(API_REQUESTS).await;
    let load = browser.script(PAGE_LOAD_MS).await;
    eprintln!("console list: in-app {in_app}, fresh load {fresh}, page load {load} ms");
    let list_requests = fresh.as_array().map(|r| {
        r.iter()
            .filter(|r| r[0].as_str().is_some_and(|u| u.contains("/key-results")))
            .count()
    });
    assert_eq!(list_requests, Some(1), "{fresh}");
    browser
        .script("window.__notReloaded = true; return true")
        .await;
    api.ok(
        Method::PUT,
        &format!("/api/v1/key-results/{kr}/link"),
        &admin,
        Some(
            json!({"connection_id": conn, "app_id": app, "entity": "lead", "view_id": hot,
                    "column": "fullname", "aggregation": "count", "interval_seconds": 1}),
        ),
    )
    .await;
    let more: Vec<dataverse_sim::Row> = (0..7)
        .map(|i| {
            let mut row = dataverse_sim::Row::new();
            row.insert(
                "leadid".into(),
                json!(format!("00000000-0000-4000-9000-{i:012}")),
            );
            row.insert("fullname".into(), json!(format!("Hot {i}")));
            row.insert("statecode".into(), json!(0));
            row.insert("leadqualitycode".into(), json!(1));
            row.insert("createdon".into(), json!("2025-03-01T10:00:00Z"));
            row
        })
        .collect();
    sim.server.add_rows("lead", more);
    let updated = grouped(hot_leads() + 7.0);
    browser
        .text_when(&format!("tr[data-kr-id=\"{kr}\"] .progress-text"), |t| {
            t.contains(&updated)
        })
        .await;
    assert_eq!(
        browser.script("return window.__notReloaded === true").await,
        json!(true),
        "updated in place"
    );
    browser.shot("08-key-results-updated").await;
    browser.client.close().await.expect("close the browser");
}

#[tokio::test]
async fn a_member_sees_no_admin_screen_and_a_broken_link_says_why() {
    let Some(browser) = Browser::start("member").await else {
        return;
    };
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let member = token(&cli, &["--org", "default"], "member").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let conn = api.add_connection(&sim, "sim", &admin).await;
    let hot = api.hot_leads(&conn, &admin).await;
    let (_, kr) = api
        .call(
            Method::POST,
            "/api/v1/organizations/1/key-results",
            Some(&admin),
            Some(KR("Hot leads")),
        )
        .await;
    let kr = kr["id"].as_i64().expect("kr");
    api.ok(
        Method::PUT,
        &format!("/api/v1/key-results/{kr}/link"),
        &admin,
        Some(hot.link(&conn)),
    )
    .await;
    sim.server.delete_view(&hot.view);
    api.ok(
        Method::POST,
        &format!("/api/v1/key-results/{kr}/sync"),
        &admin,
        None,
    )
    .await;
    // The organization's alerts hold the broken link.
    let alerts = api
        .ok(Method::GET, "/api/v1/organizations/1/alerts", &member, None)
        .await;
    let broken = find(&alerts, "subject", &format!("kr:{kr}"));
    assert_eq!(broken["kind"], "broken-link", "{alerts}");
    let details = api
        .ok(
            Method::GET,
            &format!("/api/v1/key-results/{kr}"),
            &admin,
            None,
        )
        .await;
    let reason = details["link"]["state_reason"]
        .as_str()
        .expect("a broken link says why")
        .to_string();

    // Progress entered by hand, in money and in percent.
    let mut pipeline = KR("Open pipeline");
    pipeline["unit"] = json!("currency");
    pipeline["currency"] = json!("USD");
    pipeline["target"] = json!(5_000_000.0);
    let (_, pipeline) = api
        .call(
            Method::POST,
            "/api/v1/organizations/1/key-results",
            Some(&member),
            Some(pipeline),
        )
        .await;
    let pipeline = pipeline["id"].as_i64().expect("kr");
    let mut share = KR("Win rate");
    share["unit"] = json!("percent");
    share["target"] = json!(60.0);
    let (_, share) = api
        .call(
            Method::POST,
            "/api/v1/organizations/1/key-results",
            Some(&member),
            Some(share),
        )
        .await;
    let share = share["id"].as_i64().expect("kr");
    api.ok(
        Method::POST,
        &format!("/api/v1/key-results/{share}/check-in"),
        &member,
        Some(json!({"value": 45})),
    )
    .await;

    let base = api.base.clone();
    browser.sign_in(&base, &member).await;
    browser
        .goto(&format!("{base}/#/key-results/{pipeline}"))
        .await;
    browser.type_into("#checkin-value", "1250000").await;
    browser.click("#checkin-save").await;
    browser
        .text_when("#details-status", |t| t.contains("$1,250,000.00"))
        .await;
    let checked_in = api
        .ok(
            Method::GET,
            &format!("/api/v1/key-results/{pipeline}"),
            &member,
            None,
        )
        .await;
    assert_eq!(
        checked_in["key_result"]["current_value"],
        json!(1_250_000.0)
    );
    browser.goto(&format!("{base}/#/orgs/1/key-results")).await;
    let money = browser
        .text_when(
            &format!("tr[data-kr-id=\"{pipeline}\"] .progress-text"),
            |t| !t.is_empty(),
        )
        .await;
    assert!(
        money.contains("$1,250,000.00") && money.contains("$5,000,000.00") && money.contains("25"),
        "{money}"
    );
    let percent = browser
        .text_when(&format!("tr[data-kr-id=\"{share}\"] .progress-text"), |t| {
            !t.is_empty()
        })
        .await;
    assert!(
        percent.contains("45%") && percent.contains("60%"),
        "{percent}"
    );

    let admin_links = browser
        .script("return document.querySelectorAll('#nav-admin').length")
        .await;
    assert_eq!(admin_links, json!(0), "a member has no admin link");
    browser.goto(&format!("{base}/#/orgs/1/admin")).await;
    browser.element("#not-allowed").await;

    browser.goto(&format!("{base}/#/orgs/1/key-results")).await;
    browser
        .element(&format!("tr[data-kr-id=\"{kr}\"] .badge-broken"))
        .await;
    browser.goto(&format!("{base}/#/key-results/{kr}")).await;
    let state = browser.text_when("#details-state", |t| !t.is_empty()).await;
    assert!(
        state.contains(&reason),
        "the console says why: {state} ({reason})"
    );
    browser.shot("09-broken-link").await;

    // Signed out: the cookie is gone, and the list asks for a token again.
    browser.click("#sign-out").await;
    browser.element("#token").await;
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    assert!(
        cookies
            .iter()
            .all(|c| c.name() != "goals_session" || c.value().is_empty()),
        "{cookies:?}"
    );
    browser.goto(&format!("{base}/#/orgs/1/key-results")).await;
    browser.element("#token").await;
    browser.client.close().await.expect("close the browser");
}

/// Without a browser: the console's pages carry their Content-Security-Policy,
/// and a request with the session cookie changes nothing unless it carries the
/// console's header (what a cross-site form or script cannot send).
#[tokio::test]
async fn console_pages_forbid_inline_script_and_cookie_writes_need_the_console_header() {
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/", api.base))
        .send()
        .await
        .expect("the page");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    assert!(
        html.contains("/assets/app.js") && !html.contains("onclick"),
        "{html}"
    );
    for asset in ["app.js", "api.js", "wizard.js", "app.css", "d365.svg"] {
        let answer = http
            .get(format!("{}/assets/{asset}", api.base))
            .send()
            .await
            .expect("an asset");
        assert_eq!(answer.status(), reqwest::StatusCode::OK, "{asset}");
    }

    // Sign in as the console does: the cookie is HttpOnly and SameSite=Strict.
    let signed_in = http
        .post(format!("{}/console/session", api.base))
        .header("X-Goals-Console", "1")
        .json(&json!({"token": admin}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), reqwest::StatusCode::OK);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().expect("name=value").to_string();
    let switch = format!("{}/api/v1/organizations/1/integration", api.base);
    let off = json!({"enabled": false});
    let forged = http
        .put(&switch)
        .header("cookie", &session)
        .json(&off)
        .send()
        .await
        .expect("a forged request");
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);
    let read = http
        .get(format!("{}/api/v1/organizations/1", api.base))
        .header("cookie", &session)
        .send()
        .await
        .expect("a read");
    let org: Value = read.json().await.expect("json");
    assert_eq!(
        org["integration_enabled"], true,
        "the forged request changed nothing"
    );
    let console = http
        .put(&switch)
        .header("cookie", &session)
        .header("X-Goals-Console", "1")
        .json(&off)
        .send()
        .await
        .expect("the console's request");
    assert_eq!(console.status(), reqwest::StatusCode::OK);
}

/// `demo --serve`: the demo's data in the console, with a token to sign in.
#[tokio::test]
async fn the_demo_serves_its_data_with_a_token_to_sign_in() {
    let cli = Cli::new();
    let mut demo = cli
        .command(&["demo", "--serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let mut lines = BufReader::new(demo.stdout.take().expect("stdout")).lines();
    let base = goals_e2e::announced_url(&mut lines).await;
    let token = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("ghk_") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("the token follows")
    .expect("a token line");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http = reqwest::Client::new();
    let get = |path: String| {
        let request = http.get(format!("{base}{path}")).bearer_auth(&token);
        async move {
            let answer = request.send().await.expect("a request");
            assert!(answer.status().is_success(), "{}", answer.status());
            answer.json::<Value>().await.expect("json")
        }
    };
    let orgs = get("/api/v1/organizations".to_string()).await;
    let org = find(&orgs, "name", "Contoso Sales")["id"]
        .as_i64()
        .expect("the demo's organization");
    let krs = get(format!("/api/v1/organizations/{org}/key-results")).await;
    let linked = krs
        .as_array()
        .map(|krs| krs.iter().filter(|kr| kr["link"].is_object()).count());
    assert_eq!(linked, Some(2), "{krs}");
    let projects = get(format!("/api/v1/organizations/{org}/projects")).await;
    assert_eq!(projects[0]["parent_id"], krs[1]["id"], "{projects}");
    assert!(projects[0]["link"].is_object(), "{projects}");
    let page = http
        .get(format!("{base}/"))
        .send()
        .await
        .expect("the console");
    assert!(page.status().is_success());
    let pid = demo.id().expect("a pid").to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let exit = tokio::time::timeout(Duration::from_secs(30), demo.wait())
        .await
        .expect("the demo stops")
        .expect("its status");
    assert_eq!(exit.code(), Some(0));
}

/// Keyboard only: sign in, open a Key Result's details and run Sync now
/// without a pointer.
#[tokio::test]
async fn the_console_works_from_the_keyboard() {
    let Some(browser) = Browser::start("keyboard").await else {
        return;
    };
    let sim = Sim::start().await;
    let cli = Cli::new();
    assert!(cli.add_connection(&sim, "sim").await.success());
    let kr = cli.linked_hot_leads_kr("sim", &[]).await;
    let member = token(&cli, &["--org", "default"], "member").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    const TAB: &str = "\u{E004}";
    const ENTER: &str = "\u{E007}";
    let active = "return document.activeElement ? document.activeElement.id : ''";

    browser.goto(&format!("{}/#/sign-in", api.base)).await;
    browser.element("#token").await;
    // Tab from the top of the page to the token field.
    let body = browser.element("body").await;
    let mut tabs = 0;
    while browser.script(active).await != json!("token") {
        body.send_keys(TAB).await.expect("tab");
        tabs += 1;
        assert!(tabs < 10, "the token field is reachable with Tab");
    }
    let field = browser.element("#token").await;
    field.send_keys(&member).await.expect("type the token");
    field.send_keys(ENTER).await.expect("enter");
    browser.element(&format!("#kr-{kr}-title")).await;

    // Tab to the Key Result's link, Enter opens its details.
    let wanted = json!(format!("kr-{kr}-title"));
    let mut tabs = 0;
    while browser.script(active).await != wanted {
        browser
            .client
            .active_element()
            .await
            .expect("the focused element")
            .send_keys(TAB)
            .await
            .expect("tab");
        tabs += 1;
        assert!(tabs < 30, "the Key Result is reachable with Tab");
    }
    browser
        .client
        .active_element()
        .await
        .expect("the link")
        .send_keys(ENTER)
        .await
        .expect("enter");
    let sync = browser.element("#sync-now").await;
    sync.send_keys(ENTER).await.expect("enter on Sync now");
    browser
        .text_when("#details-status", |t| t.starts_with("Synced"))
        .await;
    browser.client.close().await.expect("close the browser");
}

/// Waits until the API's answer at `path` satisfies `done`.
async fn api_until(api: &Served, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = api.ok(Method::GET, path, token, None).await;
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never got there: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The admin's and the owner's other actions: the tenant switch, testing a
/// connection, a person's sign-in by code, a new secret after the old one
/// stopped working (with its alert and fix), editing a Key Result, pausing
/// and resuming its link, moving it to another connection, unlinking it and
/// removing the connection it left.
#[tokio::test]
async fn admins_manage_connections_and_owners_manage_links_in_the_console() {
    let Some(browser) = Browser::start("manage").await else {
        return;
    };
    let contoso_sim = Sim::start().await;
    let fabrikam_sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let base = api.base.clone();
    let connections = "/api/v1/organizations/1/connections";
    let contoso = api.add_connection(&contoso_sim, "Contoso", &admin).await;
    let mut person = connection_body(&fabrikam_sim, "Fabrikam", "");
    person.as_object_mut().expect("object").remove("secret");
    let (_, fabrikam) = api
        .call(Method::POST, connections, Some(&admin), Some(person))
        .await;
    assert_eq!(fabrikam["status"], "needs-sign-in", "{fabrikam}");
    let fabrikam = fabrikam["id"].as_str().expect("connection").to_string();
    let hot = api.hot_leads(&contoso, &admin).await;
    let (_, kr) = api
        .call(
            Method::POST,
            "/api/v1/organizations/1/key-results",
            Some(&admin),
            Some(KR("Hot leads")),
        )
        .await;
    let kr = kr["id"].as_i64().expect("kr");
    let details_path = format!("/api/v1/key-results/{kr}");
    // Every second: with no scheduler, the link is stale within seconds.
    let mut every_second = hot.link(&contoso);
    every_second["interval_seconds"] = json!(1);
    api.ok(
        Method::PUT,
        &format!("{details_path}/link"),
        &admin,
        Some(every_second),
    )
    .await;
    browser.sign_in(&base, &admin).await;

    // The tenant's switch: off stops the organization's syncs, and says so.
    browser.goto(&format!("{base}/#/orgs/1/admin")).await;
    for enabled in [false, true] {
        browser.click("#tenant-integration").await;
        api_until(&api, "/api/v1/organizations/1", &admin, |org| {
            org["tenant_integration_enabled"] == enabled
        })
        .await;
        let status = browser
            .text_when("#integration-status", |t| {
                t.contains("stopped") != enabled && !t.is_empty()
            })
            .await;
        assert!(enabled || status.contains("stopped"), "{status}");
    }

    // Test: the connection signs in and says as whom.
    browser.click(&format!("#conn-{contoso}-test")).await;
    browser
        .text_when(&format!("#conn-{contoso}-result"), |t| {
            t.starts_with("Works: signed in as user")
        })
        .await;

    // A person's sign-in: the code shown is the one the identity platform
    // issued; once the person approves it, the connection is signed in.
    browser.click(&format!("#conn-{fabrikam}-sign-in")).await;
    let code = browser
        .text_when(&format!("#conn-{fabrikam}-code"), |t| !t.is_empty())
        .await;
    browser.shot("10-device-code").await;
    fabrikam_sim.server.approve_device_code(&code);
    browser
        .element(&format!(
            "li[data-connection-id=\"{fabrikam}\"] .badge-conn-ok"
        ))
        .await;
    let signed_in = api
        .ok(
            Method::GET,
            &format!("/api/v1/connections/{fabrikam}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(signed_in["status"], "ok", "{signed_in}");

    // Contoso's secret is replaced at the identity platform: the next sync
    // fails, the alert names the fix, and a new secret signs it in again.
    contoso_sim.server.replace_client_secret("rotated-secret");
    contoso_sim.server.expire_tokens();
    api.ok(Method::POST, &format!("{details_path}/sync"), &admin, None)
        .await;
    browser.goto(&format!("{base}/#/orgs/1/key-results")).await;
    for badge in ["needs-sign-in", "stale"] {
        browser
            .element(&format!("tr[data-kr-id=\"{kr}\"] .badge-{badge}"))
            .await;
    }
    browser.shot("13-key-results-badges").await;
    browser.goto(&format!("{base}/#/orgs/1/admin")).await;
    let alert = browser
        .text_when("#alert-list", |t| t.contains("needs sign"))
        .await;
    assert!(alert.contains("Contoso"), "{alert}");
    browser.click("#alert-list button[id$=\"-fix\"]").await;
    let focused = browser
        .script("return document.activeElement ? document.activeElement.id : ''")
        .await;
    assert_eq!(focused, json!(format!("conn-{contoso}-secret")));
    browser.shot("11-needs-sign-in").await;
    browser
        .type_into(&format!("#conn-{contoso}-secret"), "rotated-secret")
        .await;
    browser.click(&format!("#conn-{contoso}-sign-in")).await;
    browser
        .element(&format!(
            "li[data-connection-id=\"{contoso}\"] .badge-conn-ok"
        ))
        .await;
    browser
        .text_when("#alerts", |t| {
            t.contains("Open alerts") && !t.contains("needs sign")
        })
        .await;
    let page = browser.client.source().await.expect("the page");
    assert!(!page.contains("rotated-secret"), "no secret in the page");

    // Edit: the new title and target reach the API and the details.
    browser.goto(&format!("{base}/#/key-results/{kr}")).await;
    browser.click("#edit-kr").await;
    browser
        .type_into("#kr-title", "Work the hottest leads")
        .await;
    browser.type_into("#kr-target", "20000").await;
    browser.shot("12-edit-key-result").await;
    browser.click("#kr-save").await;
    browser
        .text_when("main h1", |t| t == "Work the hottest leads")
        .await;
    let edited = api.ok(Method::GET, &details_path, &admin, None).await;
    assert_eq!(edited["key_result"]["title"], "Work the hottest leads");
    assert_eq!(edited["key_result"]["target"], json!(20000.0));

    // Pause and resume.
    browser.click("#pause-link").await;
    browser.element("#resume-link").await;
    browser
        .element("#link-heading ~ .badges .badge-paused")
        .await;
    api_until(&api, &details_path, &admin, |d| {
        d["link"]["state"] == "paused"
    })
    .await;
    browser.click("#resume-link").await;
    browser.element("#pause-link").await;
    api_until(&api, &details_path, &admin, |d| {
        d["link"]["state"] == "active"
    })
    .await;

    // A sync already running (a slow one started through the API): Sync now
    // says so and when it started.
    contoso_sim.server.set_latency(Duration::from_secs(3));
    let slow = {
        let http = reqwest::Client::new();
        let url = format!("{base}/api/v1/key-results/{kr}/sync");
        let token = admin.clone();
        tokio::spawn(async move { http.post(url).bearer_auth(token).send().await })
    };
    api_until(&api, &details_path, &admin, |d| {
        d["last_run"]["status"] == "running"
    })
    .await;
    browser.click("#sync-now").await;
    let running = browser
        .text_when("#details-error", |t| t.contains("already running"))
        .await;
    assert!(running.contains("since"), "{running}");
    let finished = slow.await.expect("the slow sync").expect("its answer");
    assert!(finished.status().is_success(), "{}", finished.status());
    contoso_sim.server.set_latency(Duration::ZERO);
    // Reload the details, so Sync now is enabled again.
    browser.goto("about:blank").await;
    browser.goto(&format!("{base}/#/key-results/{kr}")).await;
    browser.element("#sync-now").await;

    // Throttled: the first Sync now meets Dynamics 365's 429, the second is
    // refused by the host until the Retry-After passes; both say so.
    contoso_sim
        .server
        .inject_fault(dataverse_sim::Fault::Status {
            status: 429,
            retry_after_seconds: Some(120),
        });
    browser.click("#sync-now").await;
    browser
        .text_when("#details-status", |t| t.contains("asked to slow down"))
        .await;
    browser.click("#sync-now").await;
    let refused = browser
        .text_when("#details-error", |t| t.contains("Try again in about"))
        .await;
    assert!(refused.contains("nothing was sent"), "{refused}");
    browser.shot("14-throttled").await;

    // Change metric: the same view, through the person's connection.
    browser.click("#link-kr").await;
    browser.wizard_to_hot_leads(&fabrikam, &hot).await;
    browser.click("#wizard-save").await;
    browser
        .text_when("#details-link", |t| t.contains("Fabrikam"))
        .await;
    let moved = api.ok(Method::GET, &details_path, &admin, None).await;
    assert_eq!(moved["link"]["connection_id"], json!(fabrikam), "{moved}");
    assert_eq!(moved["key_result"]["current_value"], json!(hot_leads()));

    // Unlink: the value stays, the details offer a link again.
    browser.click("#unlink").await;
    browser.click("#unlink-confirm").await;
    browser
        .text_when("#link-kr", |t| t == "Link to a metric")
        .await;
    let unlinked = api.ok(Method::GET, &details_path, &admin, None).await;
    assert!(unlinked["link"].is_null(), "{unlinked}");
    assert_eq!(unlinked["key_result"]["current_value"], json!(hot_leads()));

    // Contoso, now unused, is removed.
    browser.goto(&format!("{base}/#/orgs/1/admin")).await;
    browser.click(&format!("#conn-{contoso}-remove")).await;
    browser
        .click(&format!("#conn-{contoso}-remove-confirm"))
        .await;
    browser
        .text_when("#connections-status", |t| t.contains("Removed Contoso"))
        .await;
    assert!(
        browser
            .client
            .find(Locator::Css(&format!(
                "li[data-connection-id=\"{contoso}\"]"
            )))
            .await
            .is_err(),
        "the removed connection left the list"
    );
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/connections/{contoso}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    browser.client.close().await.expect("close the browser");
}

/// A Project in the console: created under a Key Result with a due date,
/// linked through the wizard, synced, and listed with its icon.
#[tokio::test]
async fn a_project_is_created_linked_and_synced_in_the_console() {
    let Some(browser) = Browser::start("project").await else {
        return;
    };
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let member = token(&cli, &["--org", "default"], "member").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let conn = api.add_connection(&sim, "Contoso", &admin).await;
    let hot = api.hot_leads(&conn, &member).await;
    let kr = api
        .ok(
            Method::POST,
            "/api/v1/organizations/1/key-results",
            &member,
            Some(KR("Work the hot leads")),
        )
        .await;
    let kr = kr["id"].as_i64().expect("kr");
    let base = api.base.clone();
    browser.sign_in(&base, &member).await;

    browser.click("#nav-projects").await;
    browser.click("#new-kr").await;
    browser.type_into("#kr-title", "Partner campaign").await;
    browser.type_into("#kr-owner", "ben@contoso.com").await;
    browser.type_into("#kr-target", "10000").await;
    browser.select("#kr-parent", &kr.to_string()).await;
    // A date field's typing order follows the browser's locale: set its value.
    browser
        .script("document.getElementById('kr-due').value = '2027-03-31'; return true")
        .await;
    browser.click("#kr-progress-auto").await;
    browser.shot("15-new-project").await;
    browser.click("#kr-save").await;
    browser.wizard_to_hot_leads(&conn, &hot).await;
    browser.click("#wizard-save").await;
    browser
        .text_when("#details-value", |t| t.contains(&grouped(hot_leads())))
        .await;
    browser.click("#sync-now").await;
    browser
        .text_when("#details-status", |t| t.starts_with("Synced"))
        .await;

    let projects = api
        .ok(
            Method::GET,
            "/api/v1/organizations/1/projects",
            &member,
            None,
        )
        .await;
    let project = find(&projects, "title", "Partner campaign");
    assert_eq!(project["parent_id"], json!(kr), "{project}");
    assert_eq!(project["due_date"], "2027-03-31");
    assert_eq!(project["current_value"], json!(hot_leads()));
    let id = project["id"].as_i64().expect("id");
    let history = api
        .ok(
            Method::GET,
            &format!("/api/v1/projects/{id}/history"),
            &member,
            None,
        )
        .await;
    assert_eq!(
        history["runs"].as_array().map(Vec::len),
        Some(2),
        "{history}"
    );

    // The Projects list, with the icon; the Key Results list does not hold it.
    browser.click("#nav-projects").await;
    browser.element(&format!("#kr-{id}-d365")).await;
    let due = browser
        .text_when(&format!("tr[data-kr-id=\"{id}\"] .kr-due"), |t| {
            !t.is_empty()
        })
        .await;
    assert_eq!(due, "2027-03-31");
    browser.shot("16-projects").await;
    browser.click("#nav-key-results").await;
    browser.element(&format!("#kr-{kr}-title")).await;
    let rows = browser
        .script("return document.querySelectorAll('#kr-list tbody tr').length")
        .await;
    assert_eq!(rows, json!(1), "only the Key Result");
    browser.client.close().await.expect("close the browser");
}

/// A period set on the form and applied in the wizard to a date column of the
/// view: the preview and the saved link count only the rows dated within it.
#[tokio::test]
async fn the_wizard_applies_a_key_results_period_to_a_date_column() {
    let Some(browser) = Browser::start("period").await else {
        return;
    };
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let conn = api.add_connection(&sim, "Contoso", &admin).await;
    let apps = api
        .ok(
            Method::GET,
            &format!("/api/v1/connections/{conn}/apps"),
            &admin,
            None,
        )
        .await;
    let app = find(&apps, "name", "Sales Hub")["id"]
        .as_str()
        .expect("app")
        .to_string();
    let views = api
        .ok(
            Method::GET,
            &format!("/api/v1/connections/{conn}/entities/opportunity/views?search=open"),
            &admin,
            None,
        )
        .await;
    let view = find(&views, "name", "Open Opportunities")["id"]
        .as_str()
        .expect("view")
        .to_string();
    let (first, last) = ("2025-01-01", "2025-06-30");
    let expected = goals_e2e::dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&json!(0)))
        .filter(|row| {
            row.get("estimatedclosedate")
                .and_then(Value::as_str)
                .is_some_and(|date| (first..=last).contains(&&date[..10]))
        })
        .count();
    assert!(expected > 0);

    let base = api.base.clone();
    browser.sign_in(&base, &admin).await;
    browser
        .goto(&format!("{base}/#/orgs/1/key-results/new"))
        .await;
    browser.type_into("#kr-title", "Deals closing in H1").await;
    browser.type_into("#kr-owner", "ana@contoso.com").await;
    browser.type_into("#kr-target", "1000").await;
    browser
        .script(&format!(
            "document.getElementById('kr-period-start').value = '{first}';
             document.getElementById('kr-period-end').value = '{last}'; return true"
        ))
        .await;
    browser.click("#kr-progress-auto").await;
    browser.click("#kr-save").await;
    browser.select("#wizard-connection", &conn).await;
    browser.wizard_step("#wizard-app").await;
    browser.select("#wizard-app", &app).await;
    browser.wizard_step("#wizard-entity").await;
    browser.select("#wizard-entity", "opportunity").await;
    browser.wizard_step("#wizard-view option").await;
    browser.select("#wizard-view", &view).await;
    browser.wizard_step("#wizard-column option").await;
    browser.select("#wizard-column", "name").await;
    browser.wizard_step("#wizard-aggregation").await;
    browser.select("#wizard-aggregation", "count").await;
    browser.wizard_step("#wizard-period-column").await;
    browser
        .select("#wizard-period-column", "estimatedclosedate")
        .await;
    browser.click("#wizard-preview").await;
    let preview = browser
        .text_when("#wizard-preview-value", |t| t.contains("record"))
        .await;
    assert!(
        preview.contains(&format!("{} records", grouped(expected as f64))),
        "{preview}"
    );
    browser.shot("17-wizard-period").await;
    browser.click("#wizard-save").await;
    browser
        .text_when("#details-value", |t| t.contains(&grouped(expected as f64)))
        .await;
    let krs = api
        .ok(
            Method::GET,
            "/api/v1/organizations/1/key-results",
            &admin,
            None,
        )
        .await;
    let kr = find(&krs, "title", "Deals closing in H1");
    assert_eq!(kr["period_start"], first, "{kr}");
    assert_eq!(kr["current_value"], json!(expected as f64));
    let id = kr["id"].as_i64().expect("id");
    let details = api
        .ok(
            Method::GET,
            &format!("/api/v1/key-results/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(details["link"]["period_column"], "estimatedclosedate");
    browser.client.close().await.expect("close the browser");
}

#[tokio::test]
async fn the_wizard_offers_a_charts_measures_and_one_category() {
    let Some(browser) = Browser::start("chart").await else {
        return;
    };
    let sim = Sim::start().await;
    let cli = Cli::new();
    let admin = token(&cli, &[], "platform-admin").await;
    let api = Served::start(&cli, &["--no-scheduler"]).await;
    let conn = api.add_connection(&sim, "Contoso", &admin).await;
    let charts = api
        .ok(
            Method::GET,
            &format!("/api/v1/connections/{conn}/entities/opportunity/charts"),
            &admin,
            None,
        )
        .await;
    let apps = api
        .ok(
            Method::GET,
            &format!("/api/v1/connections/{conn}/apps"),
            &admin,
            None,
        )
        .await;
    let app = find(&apps, "name", "Sales Hub")["id"]
        .as_str()
        .expect("app")
        .to_string();
    let pipeline = find(&charts, "name", "Pipeline by Status Reason");
    assert_eq!(pipeline["category"]["column"], "statuscode", "{pipeline}");
    let chart = pipeline["id"].as_str().expect("chart id").to_string();
    let views = api
        .ok(
            Method::GET,
            &format!("/api/v1/connections/{conn}/entities/opportunity/views?search=open"),
            &admin,
            None,
        )
        .await;
    let view = find(&views, "name", "Open Opportunities")["id"]
        .as_str()
        .expect("view")
        .to_string();
    // Open opportunities on hold (status reason 2).
    let expected = goals_e2e::dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&json!(0)))
        .filter(|row| row.get("statuscode") == Some(&json!(2)))
        .count();
    assert!(expected > 0);

    let base = api.base.clone();
    browser.sign_in(&base, &admin).await;
    browser
        .goto(&format!("{base}/#/orgs/1/key-results/new"))
        .await;
    browser.type_into("#kr-title", "Deals on hold").await;
    browser.type_into("#kr-owner", "ana@contoso.com").await;
    browser.type_into("#kr-target", "10").await;
    browser.click("#kr-progress-auto").await;
    browser.click("#kr-save").await;
    browser.select("#wizard-connection", &conn).await;
    browser.wizard_step("#wizard-app").await;
    browser.select("#wizard-app", &app).await;
    browser.wizard_step("#wizard-entity").await;
    browser.select("#wizard-entity", "opportunity").await;
    browser.wizard_step("#wizard-view option").await;
    browser.select("#wizard-view", &view).await;
    browser.wizard_step("#wizard-column option").await;
    browser
        .select(
            "#wizard-column",
            &format!("chart:{chart}:count_opportunities"),
        )
        .await;
    browser.wizard_step("#wizard-aggregation").await;
    browser.wizard_step("#wizard-chart-category").await;
    browser.type_into("#wizard-chart-category", "On Hold").await;
    browser.click("#wizard-preview").await;
    let preview = browser
        .text_when("#wizard-preview-value", |t| t.contains("record"))
        .await;
    assert!(
        preview.contains(&format!("{} records", grouped(expected as f64))),
        "{preview}"
    );
    browser.shot("18-wizard-chart").await;
    browser.click("#wizard-save").await;
    let facts = browser
        .text_when("#details-link", |t| t.contains("Pipeline by Status Reason"))
        .await;
    assert!(
        facts.contains("measure count_opportunities, only On Hold"),
        "{facts}"
    );
    let krs = api
        .ok(
            Method::GET,
            "/api/v1/organizations/1/key-results",
            &admin,
            None,
        )
        .await;
    let kr = find(&krs, "title", "Deals on hold");
    assert_eq!(kr["current_value"], json!(expected as f64), "{kr}");
    let id = kr["id"].as_i64().expect("id");
    let details = api
        .ok(
            Method::GET,
            &format!("/api/v1/key-results/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(details["link"]["chart"]["category"], "On Hold");
    assert_eq!(details["link"]["chart"]["measure"], "count_opportunities");
    browser.client.close().await.expect("close the browser");
}
