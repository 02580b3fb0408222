use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};
use goals_host::cli::failure::{self, Exit};
use goals_host::cli::{self, Cli};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(error) => return usage_error(error),
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    if let Err(error) = goals_host::cli::config::apply(&mut cli, &matches) {
        return config_error(&error, cli.json);
    }
    if let Some(path) = &cli.secret_key_file {
        goals_host::secrets::use_key_file(path.clone());
    }
    let serving = matches!(cli.command, cli::Command::Serve(_));
    let default_level = match cli.verbose {
        // wasmtime-wasi-http logs each failed connection at WARN with Rust debug
        // detail; the error the command returns already says it in the user's
        // terms, so that detail waits for -v. A service logs each request and
        // sync.
        0 if serving => "warn,goals_host::api=info,goals_host::sync=info,wasmtime_wasi_http=error",
        0 => "warn,wasmtime_wasi_http=error",
        1 => "info",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Json => logs.json().with_env_filter(filter).init(),
        cli::LogFormat::Text => logs
            .with_ansi(colour_on_stderr())
            .with_env_filter(filter)
            .init(),
    }

    match cli::run(&cli).await {
        Ok(report) => {
            if cli.json {
                print_out(&report.json);
            } else {
                print_out(&report.text);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            let code = failure::exit(&error);
            if let Some(failed) = error.downcast_ref::<failure::CommandFailed>() {
                // The work ran: its report is the output, the failure its verdict.
                if cli.json {
                    print_out(&failed.json);
                } else {
                    print_out(&failed.text);
                }
                eprintln!("error: {}", failed.message);
            } else {
                if cli.json {
                    print_out(&failure::error_json(&error));
                }
                eprintln!("error: {error:#}");
            }
            ExitCode::from(code as u8)
        }
    }
}

/// One document or text on stdout. A reader that went away (`| head`) is not an
/// error worth a panic: the output is simply cut.
fn print_out(output: &dyn std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{output}");
}

/// Colour only for a person at a terminal, and never when NO_COLOR is set
/// (https://no-color.org).
fn colour_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A configuration file that cannot be used: a usage error, like a bad flag.
fn config_error(error: &goals_host::cli::config::ConfigError, json: bool) -> ExitCode {
    if json {
        print_out(
            &serde_json::json!({ "error": { "kind": "usage", "message": error.to_string() } }),
        );
    }
    eprintln!("error: {error}");
    ExitCode::from(Exit::Usage as u8)
}

/// A command line clap refused. Help and version are not failures; under
/// `--json` a usage error is the same `{"error"}` document as any other.
fn usage_error(error: clap::Error) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    if std::env::args_os().any(|arg| arg == "--json") {
        let rendered = error.to_string();
        let message = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        print_out(&serde_json::json!({ "error": { "kind": "usage", "message": message } }));
    }
    let _ = error.print();
    ExitCode::from(Exit::Usage as u8)
}
