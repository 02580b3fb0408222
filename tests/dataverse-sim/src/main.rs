//! `dataverse-sim --listen 127.0.0.1:0`: serves the simulator until Ctrl-C.

use clap::Parser;
use dataverse_sim::{RunningSimulator, SimConfig};
use std::io::Write;
use std::net::SocketAddr;

/// A Dataverse Web API and Microsoft identity simulator with sample sales data.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Tenant accepted by the token endpoint.
    #[arg(long)]
    tenant: Option<String>,
    /// Client id accepted by the token endpoint.
    #[arg(long)]
    client_id: Option<String>,
    /// Client secret accepted by the token endpoint.
    #[arg(long)]
    client_secret: Option<String>,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long)]
    token_lifetime_seconds: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let defaults = SimConfig::default();
    let config = SimConfig {
        tenant: args.tenant.unwrap_or(defaults.tenant),
        client_id: args.client_id.unwrap_or(defaults.client_id),
        client_secret: args.client_secret.unwrap_or(defaults.client_secret),
        token_lifetime_seconds: args
            .token_lifetime_seconds
            .unwrap_or(defaults.token_lifetime_seconds),
    };
    let simulator = RunningSimulator::start(args.listen, config).await?;
    let mut out = std::io::stdout().lock();
    // Whoever started the process waits for this exact first line.
    writeln!(out, "listening on {}", simulator.url())?;
    out.flush()?;
    let config = simulator.config();
    let details = format!(
        "tenant: {}\nclient id: {}\nclient secret: {}\nenvironment URL: {url}\nauthority URL: {url}\n",
        config.tenant,
        config.client_id,
        config.client_secret,
        url = simulator.url()
    );
    // A parent that only waited for the first line may have closed the pipe by
    // now; the simulator keeps serving either way.
    let _ = out.write_all(details.as_bytes()).and_then(|()| out.flush());
    drop(out);
    tokio::signal::ctrl_c().await?;
    simulator.shutdown().await;
    Ok(())
}
