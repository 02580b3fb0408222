//! The interactive `kr link` wizard, driven through a real pseudo-terminal: every
//! pick list typed into as a person would, the preview read, and the answer to
//! "Save this link?" checked against what was stored.

use goals_e2e::{Cli, Sim, dataset, goals_host_binary};
use rexpect::process::WaitStatus;
use rexpect::session::{Options, PtySession, spawn_with_options};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Instant;

/// How long any one expected piece of output may take. Generous: the binary
/// compiles the WebAssembly component before its first prompt, and the machine
/// may be busy with other tests.
const STEP_TIMEOUT_MS: u64 = 60_000;

/// A Key Result measured in dollars, created through the CLI; returns its id.
async fn pipeline_kr(cli: &Cli) -> String {
    let created = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "Pipeline",
            "--owner",
            "ana",
            "--unit",
            "currency",
            "--currency-code",
            "USD",
            "--start",
            "0",
            "--target",
            "300000000",
        ])
        .await;
    match &created["id"] {
        Value::Number(id) => id.to_string(),
        Value::String(id) => id.clone(),
        other => panic!("no id in the created Key Result: {other} ({created})"),
    }
}

/// The sum the wizard's link should measure: base-currency revenue of open deals.
fn open_pipeline() -> f64 {
    dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&json!(0)))
        .filter_map(|row| row.get("estimatedvalue_base").and_then(Value::as_f64))
        .sum()
}

/// `text` as a regular expression matching itself.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A running `goals-host` on a pseudo-terminal, with everything it printed (colours
/// and cursor movements stripped) kept for assertions and failure messages.
struct Terminal {
    session: PtySession,
    transcript: String,
    started: Instant,
}

impl Terminal {
    fn spawn(cli: &Cli, args: &[&str]) -> Terminal {
        let mut command = Command::new(goals_host_binary());
        command
            .arg("--data-dir")
            .arg(cli.data_dir())
            .args(args)
            .env("TERM", "xterm")
            // Colours on as in a person's terminal; the reader strips them.
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("GOALS_HOST_PLUGIN")
            .env_remove("RUST_LOG");
        let mut session = spawn_with_options(
            command,
            Options::new()
                .timeout_ms(Some(STEP_TIMEOUT_MS))
                .strip_ansi_escape_codes(true),
        )
        .expect("start goals-host on a pseudo-terminal");
        // Dropping the session ends the child: SIGTERM, then SIGKILL after 5 s.
        session.process_mut().set_kill_timeout(Some(5_000));
        Terminal {
            session,
            transcript: String::new(),
            started: Instant::now(),
        }
    }

    /// The output so far, for failure messages. rexpect turns each byte into a
    /// character, so UTF-8 such as "✔" is reassembled here.
    fn readable(&self) -> String {
        match self
            .transcript
            .chars()
            .map(|c| u8::try_from(c).ok())
            .collect::<Option<Vec<u8>>>()
        {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => self.transcript.clone(),
        }
    }

    fn fail(&self, what: &str, error: rexpect::error::Error) -> ! {
        panic!(
            "{what} after {:.1?}: {error}\n--- output so far ---\n{}",
            self.started.elapsed(),
            self.readable()
        )
    }

    /// Waits for `text`; returns what came before it.
    fn expect(&mut self, text: &str) -> String {
        match self.session.exp_string(text) {
            Ok(before) => {
                self.transcript.push_str(&before);
                self.transcript.push_str(text);
                before
            }
            Err(e) => self.fail(&format!("waiting for {text:?}"), e),
        }
    }

    /// Waits for a match of `regex`; returns the matched text.
    fn expect_regex(&mut self, regex: &str) -> String {
        match self.session.exp_regex(regex) {
            Ok((before, matched)) => {
                self.transcript.push_str(&before);
                self.transcript.push_str(&matched);
                matched
            }
            Err(e) => self.fail(&format!("waiting for /{regex}/"), e),
        }
    }

    fn send(&mut self, keys: &str) {
        if let Err(e) = self.session.send(keys).and_then(|_| self.session.flush()) {
            self.fail(&format!("typing {keys:?}"), e);
        }
    }

    /// Waits for the prompt `prompt`, types `keys` and Enter, then checks the line
    /// dialoguer leaves behind, "✔ {prompt} · {answer}".
    fn answer(&mut self, prompt: &str, keys: &str, answer: &str) {
        self.expect(&format!("? {prompt} "));
        self.send(keys);
        self.send("\r");
        self.expect_answered(prompt, answer);
    }

    /// Waits for the summary line of an answered prompt and checks its answer, so
    /// a wrong pick fails at once rather than at a timeout. The separator is "·";
    /// the reader hands over each byte as a character, so its UTF-8 arrives as "Â·".
    fn expect_answered(&mut self, prompt: &str, answer: &str) {
        let line = self.expect_regex(&format!(
            "{} (?:·|\u{c2}\u{b7}) [^\r\n]*\r?\n",
            literal(prompt)
        ));
        let given = line[prompt.len() + 1..]
            .split_once(' ')
            .map_or("", |(_, given)| given.trim_end_matches(['\r', '\n']));
        assert_eq!(
            given,
            answer,
            "the answer to {prompt:?}\n--- output so far ---\n{}",
            self.readable()
        );
    }

    /// Waits for the end of the output and a successful exit; returns all the
    /// output.
    fn finish(mut self) -> String {
        let rest = match self.session.exp_eof() {
            Ok(rest) => rest,
            Err(e) => self.fail("waiting for the end of the output", e),
        };
        self.transcript.push_str(&rest);
        let status = self
            .session
            .process()
            .wait()
            .expect("wait for goals-host to exit");
        assert!(
            matches!(status, WaitStatus::Exited(_, 0)),
            "goals-host ended with {status:?}\n--- output ---\n{}",
            self.readable()
        );
        self.readable()
    }
}

/// The steps common to both tests, from the app to the Save question: Sales Hub,
/// opportunities, the view found by `search` and picked by typing `view_keys`,
/// then the sum of the estimated revenue in the base currency. Returns the
/// preview line.
fn walk_to_save(terminal: &mut Terminal, search: &str, view_keys: &str) -> String {
    terminal.answer("App", "Sales", "Sales Hub");
    terminal.answer("Entity", "Opport", "Opportunity (opportunity)");
    terminal.answer("Search views by name (empty for all)", search, search);
    terminal.answer("View", view_keys, "Open Opportunities (system)");
    terminal.answer(
        "Column",
        "estimatedvalue",
        "Est. Revenue (estimatedvalue, money)",
    );
    terminal.answer("Aggregation", "sum", "sum");
    terminal.answer("Currency", "base", "organization's base currency");
    terminal.expect("Preview: ");
    let preview = terminal.expect("\n").trim().to_string();
    terminal.expect("? Save this link? ");
    preview
}

/// The amount in a preview such as "sum of ... = 273,477,274.73 USD (1088 records)".
fn previewed_amount(preview: &str) -> f64 {
    let amount = preview
        .split_once(" = ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no amount in the preview: {preview}"));
    amount
        .replace(',', "")
        .parse()
        .unwrap_or_else(|e| panic!("amount {amount:?} in the preview: {e}"))
}

/// Runs the blocking pseudo-terminal conversation off the async runtime, which
/// keeps serving the simulator meanwhile.
async fn converse<T: Send + 'static>(talk: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(talk).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[tokio::test]
async fn the_wizard_links_a_key_result_to_the_open_pipeline() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let added = cli.add_connection(&sim, "sim").await;
    assert!(added.success(), "{}", added.stderr);
    let id = pipeline_kr(&cli).await;
    let url = sim.url();

    let (cli, preview, transcript) = {
        let id = id.clone();
        converse(move || {
            let mut terminal = Terminal::spawn(&cli, &["kr", "link", &id]);
            terminal.answer("Connection", "sim", &format!("sim ({url})"));
            let preview = walk_to_save(&mut terminal, "open", "Opportunities");
            // Enter takes the default, yes.
            terminal.send("\r");
            terminal.expect_answered("Save this link?", "yes");
            (cli, preview, terminal.finish())
        })
        .await
    };

    let expected = open_pipeline();
    assert!(
        preview.starts_with("sum of Est. Revenue in 'Open Opportunities' = "),
        "preview: {preview}"
    );
    assert!(preview.contains(" USD ("), "preview: {preview}");
    let previewed = previewed_amount(&preview);
    assert!(
        (previewed - expected).abs() < 0.01,
        "previewed {previewed}, data says {expected}"
    );
    assert!(
        transcript.contains(&format!("Key Result {id} linked to connection 'sim'")),
        "{transcript}"
    );
    assert!(
        transcript
            .lines()
            .any(|line| line.starts_with("value ") && line.contains(" USD")),
        "no value line: {transcript}"
    );

    let details = cli.json(&["kr", "show", &id]).await;
    let link = &details["link"];
    assert_eq!(link["view_name"], "Open Opportunities", "{details}");
    assert_eq!(link["column_logical_name"], "estimatedvalue", "{details}");
    assert_eq!(link["aggregation"], "sum", "{details}");
    assert_eq!(link["currency_mode"], "base", "{details}");
    assert_eq!(link["currency"], "USD", "{details}");
    let value = details["key_result"]["current_value"]
        .as_f64()
        .unwrap_or_else(|| panic!("the first sync gave no value: {details}"));
    assert!(
        (value - expected).abs() < 0.01,
        "linked value {value}, data says {expected}"
    );
}

#[tokio::test]
async fn declining_to_save_leaves_the_key_result_unlinked() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let added = cli.add_connection(&sim, "sim").await;
    assert!(added.success(), "{}", added.stderr);
    let id = pipeline_kr(&cli).await;

    let (cli, transcript) = {
        let id = id.clone();
        converse(move || {
            // The connection given as a flag is not asked for; an empty search
            // lists every view of the entity.
            let mut terminal = Terminal::spawn(&cli, &["kr", "link", &id, "--connection", "sim"]);
            walk_to_save(&mut terminal, "", "Open Opportunities");
            terminal.send("n");
            terminal.expect_answered("Save this link?", "no");
            (cli, terminal.finish())
        })
        .await
    };

    assert!(!transcript.contains("? Connection"), "{transcript}");
    assert!(transcript.contains("nothing saved"), "{transcript}");
    assert!(!transcript.contains("linked to"), "{transcript}");
    let details = cli.json(&["kr", "show", &id]).await;
    assert_eq!(details["link"], Value::Null, "{details}");
    assert_eq!(
        details["key_result"]["current_value"],
        Value::Null,
        "{details}"
    );
}

/// A slow call on a terminal shows a spinner with what is happening, the
/// plugin's own progress included, then the result.
#[tokio::test]
async fn a_slow_call_shows_its_progress_on_a_terminal() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let added = cli.add_connection(&sim, "sim").await;
    assert!(added.success(), "{}", added.stderr);
    // Every answer takes longer than the spinner waits before it shows.
    sim.server
        .set_latency(std::time::Duration::from_millis(700));
    let transcript = converse(move || {
        let mut terminal = Terminal::spawn(&cli, &goals_e2e::hot_leads_measure("sim"));
        terminal.expect("measuring view 'Hot Leads' of connection 'sim'");
        terminal.expect("signing in");
        terminal.expect("value");
        terminal.finish()
    })
    .await;
    assert!(transcript.contains("requests"), "{transcript}");
}

/// A Key Result with a period: the wizard asks which of the view's own date
/// columns the period applies to, and the preview counts only those rows.
#[tokio::test]
async fn the_wizard_offers_the_views_date_columns_for_the_period() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let added = cli.add_connection(&sim, "sim").await;
    assert!(added.success(), "{}", added.stderr);
    let (first, last) = ("2025-01-01", "2025-06-30");
    let id = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "Deals closing in H1",
            "--owner",
            "ana",
            "--start",
            "0",
            "--target",
            "500",
            "--period-start",
            first,
            "--period-end",
            last,
        ])
        .await["id"]
        .to_string();

    let (cli, preview) = {
        let id = id.clone();
        converse(move || {
            let mut terminal = Terminal::spawn(
                &cli,
                &["kr", "link", &id, "--connection", "sim", "--no-backfill"],
            );
            terminal.answer("App", "Sales", "Sales Hub");
            terminal.answer("Entity", "Opport", "Opportunity (opportunity)");
            terminal.answer("Search views by name (empty for all)", "open", "open");
            terminal.answer("View", "Opportunities", "Open Opportunities (system)");
            terminal.answer("Column", "Topic", "Topic (name, text)");
            terminal.answer("Aggregation", "count", "count");
            terminal.expect("? Period ");
            terminal.send("estimatedclosedate");
            terminal.send("\r");
            // The answered line, not a redraw while typing: "Period · …".
            let chosen = terminal.expect_regex("Period (?:·|\u{c2}\u{b7}) [^\r\n]*\r?\n");
            assert!(chosen.contains("(estimatedclosedate)"), "{chosen}");
            terminal.expect("Preview: ");
            let preview = terminal.expect("\n").trim().to_string();
            terminal.expect("? Save this link? ");
            terminal.send("\r");
            terminal.expect_answered("Save this link?", "yes");
            terminal.finish();
            (cli, preview)
        })
        .await
    };
    let expected = dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&json!(0)))
        .filter(|row| {
            row.get("estimatedclosedate")
                .and_then(Value::as_str)
                .is_some_and(|date| (first..=last).contains(&&date[..10]))
        })
        .count();
    assert!(
        preview.contains(&format!("({expected} records)")),
        "{preview}, expected {expected}"
    );
    let details = cli.json(&["kr", "show", &id]).await;
    assert_eq!(details["link"]["period_column"], "estimatedclosedate");
    assert_eq!(
        details["key_result"]["current_value"],
        json!(expected as f64)
    );
}

#[tokio::test]
async fn the_wizard_offers_a_charts_measures_and_asks_for_a_category() {
    let sim = Sim::start().await;
    let cli = Cli::new();
    let added = cli.add_connection(&sim, "sim").await;
    assert!(added.success(), "{}", added.stderr);
    let id = cli
        .json(&[
            "kr",
            "create",
            "--title",
            "Deals on hold",
            "--owner",
            "ana",
            "--start",
            "0",
            "--target",
            "500",
        ])
        .await["id"]
        .to_string();

    let (cli, preview) = {
        let id = id.clone();
        converse(move || {
            let mut terminal = Terminal::spawn(&cli, &["kr", "link", &id, "--connection", "sim"]);
            terminal.answer("App", "Sales", "Sales Hub");
            terminal.answer("Entity", "Opport", "Opportunity (opportunity)");
            terminal.answer("Search views by name (empty for all)", "open", "open");
            terminal.answer("View", "Opportunities", "Open Opportunities (system)");
            terminal.answer(
                "Column",
                "count_opportunities",
                "chart 'Pipeline by Status Reason': count of opportunityid (count_opportunities)",
            );
            // The measure's own aggregation: no question about it.
            terminal.answer(
                "Only one category of statuscode (empty for every row)",
                "On Hold",
                "On Hold",
            );
            terminal.expect("Preview: ");
            let preview = terminal.expect("\n").trim().to_string();
            terminal.expect("? Save this link? ");
            terminal.send("\r");
            terminal.expect_answered("Save this link?", "yes");
            let output = terminal.finish();
            assert!(!output.contains("? Aggregation"), "{output}");
            (cli, preview)
        })
        .await
    };
    let on_hold = dataset()
        .rows("opportunity")
        .iter()
        .filter(|row| row.get("statecode") == Some(&json!(0)))
        .filter(|row| row.get("statuscode") == Some(&json!(2)))
        .count();
    assert!(
        preview.contains("chart 'Pipeline by Status Reason', category On Hold")
            && preview.contains(&format!("({on_hold} records)")),
        "{preview}, expected {on_hold}"
    );
    let details = cli.json(&["kr", "show", &id]).await;
    assert_eq!(details["link"]["chart"]["measure"], "count_opportunities");
    assert_eq!(details["link"]["chart"]["category"], "On Hold");
    assert_eq!(
        details["key_result"]["current_value"],
        json!(on_hold as f64)
    );
}
