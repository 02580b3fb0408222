//! CLI commands that sign a person in with a device code: the test plays the
//! person, approving the code at the simulator while the command waits.

use crate::{Cli, Run, Sim, goals_host_binary, shared_cache_dir};
use dataverse_sim::DeviceCodeState;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

impl Cli {
    /// Runs `goals-host ARGS` with `env` (a command that shows a device code and
    /// waits for the sign-in: `connection add --sign-in device`, `connection
    /// sign-in`), approves the code it asked for, and returns the finished run
    /// and the user code. Panics unless the command asked for a new code.
    pub async fn run_approving_sign_in(
        &self,
        sim: &Sim,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Run, String) {
        let earlier = sim.server.device_codes().len();
        let mut child = tokio::process::Command::new(goals_host_binary())
            .arg("--data-dir")
            .arg(self.data_dir())
            .env("GOALS_HOST_CACHE_DIR", shared_cache_dir())
            .env_remove("GOALS_HOST_SECRET_KEY")
            .env_remove("GOALS_HOST_PLUGIN")
            .env_remove("RUST_LOG")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start goals-host");
        // Read both pipes at once, so a chatty log never blocks the command.
        let mut stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let out = tokio::spawn(async move {
            let mut text = Vec::new();
            stdout.read_to_end(&mut text).await.map(|_| text)
        });
        let err = tokio::spawn(async move {
            let mut text = Vec::new();
            stderr.read_to_end(&mut text).await.map(|_| text)
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let user_code = loop {
            if let Some(code) = sim
                .server
                .device_codes()
                .into_iter()
                .skip(earlier)
                .find(|c| c.state == DeviceCodeState::Pending)
            {
                break code.user_code;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let stderr = err.await.expect("join").expect("read stderr");
                panic!(
                    "goals-host {args:?} ended ({status}) without asking for a device code:\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "goals-host {args:?} asked for no device code"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        sim.server.approve_device_code(&user_code);
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("the sign-in finishes")
            .expect("goals-host ran");
        let stdout = out.await.expect("join").expect("read stdout");
        let stderr = err.await.expect("join").expect("read stderr");
        let run = Run {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            output: std::process::Output {
                status,
                stdout,
                stderr,
            },
        };
        (run, user_code)
    }

    /// `connection add` of a person's connection to the simulator under `name`,
    /// after the global arguments `leading`, approved by the person; the command
    /// must succeed and show the person the code and where to enter it.
    pub async fn add_person_connection(
        &self,
        sim: &Sim,
        name: &str,
        leading: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        let url = sim.url();
        let args = [
            leading,
            &sim.connection_add(name, &url),
            &["--sign-in", "device"],
        ]
        .concat();
        let (run, user_code) = self.run_approving_sign_in(sim, &args, env).await;
        assert!(run.success(), "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(&user_code),
            "the code is shown to the person:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains("/devicelogin"), "{}", run.stderr);
        run
    }
}
