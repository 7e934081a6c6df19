//! Running commands in running containers, capturing their output and exit code; optionally feeding stdin
//! from a byte stream (e.g. an exported image piped into `ctr images import -`, with no temporary file).

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::Docker;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    /// The output, or a Failed error naming the command, its exit code and the end of its stderr.
    pub fn check(self, container: &str, cmd: &[&str]) -> Result<ExecOutput> {
        if self.exit_code == 0 {
            return Ok(self);
        }
        let mut error = Error::failed(format!(
            "`{}` in container {container} exited with code {}",
            cmd.join(" "),
            self.exit_code
        ));
        let lines: Vec<&str> = self.stderr.lines().chain(self.stdout.lines()).collect();
        for line in &lines[lines.len().saturating_sub(15)..] {
            error = error.detail(format!("| {line}"));
        }
        Err(error)
    }
}

impl Docker {
    /// Runs `cmd` in `container` and collects stdout, stderr and the exit code (a non-zero code is not an error).
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> Result<ExecOutput> {
        self.exec_inner(container, cmd, None::<futures::stream::Empty<Result<Bytes>>>)
            .await
    }

    /// Like [`Docker::exec`], but fails on a non-zero exit code; stdout.
    pub async fn exec_ok(&self, container: &str, cmd: &[&str]) -> Result<String> {
        Ok(self.exec(container, cmd).await?.check(container, cmd)?.stdout)
    }

    /// Runs `cmd` with `input` as its stdin (closed at the end of the stream), collecting output and exit code.
    pub async fn exec_with_stdin(
        &self,
        container: &str,
        cmd: &[&str],
        input: impl Stream<Item = Result<Bytes>> + Send,
    ) -> Result<ExecOutput> {
        self.exec_inner(container, cmd, Some(input)).await
    }

    async fn exec_inner(
        &self,
        container: &str,
        cmd: &[&str],
        input: Option<impl Stream<Item = Result<Bytes>> + Send>,
    ) -> Result<ExecOutput> {
        let doing = format!("run `{}` in container", cmd.join(" "));
        let options = CreateExecOptions {
            attach_stdin: Some(input.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            ..Default::default()
        };
        let created = self
            .client
            .create_exec(container, options)
            .await
            .map_err(|e| self.fail(e, &doing, container))?;
        let started = self
            .client
            .start_exec(&created.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| self.fail(e, &doing, container))?;
        let StartExecResults::Attached {
            mut output,
            input: mut stdin,
        } = started
        else {
            return Err(Error::failed(format!(
                "cannot {doing} {container}: Docker detached the exec"
            )));
        };
        let feed = async {
            let Some(input) = input else { return Ok(()) };
            let mut input = std::pin::pin!(input);
            let broken = |what: &str| Error::failed(format!("cannot {doing} {container}: {what} stdin failed"));
            while let Some(chunk) = input.next().await {
                stdin
                    .write_all(&chunk?)
                    .await
                    .map_err(|e| broken("writing").source(e))?;
            }
            // Closing our side is what the command sees as the end of its input.
            stdin.shutdown().await.map_err(|e| broken("closing").source(e))
        };
        let collect = async {
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            while let Some(chunk) = output.next().await {
                match chunk.map_err(|e| self.fail(e, &doing, container))? {
                    LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        stdout.extend_from_slice(&message)
                    }
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok::<_, Error>((stdout, stderr))
        };
        // A failed input ends the exec at once: waiting for output would wait for a command still reading stdin.
        let ((), (stdout, stderr)) = tokio::try_join!(feed, collect)?;
        let inspected = self
            .client
            .inspect_exec(&created.id)
            .await
            .map_err(|e| self.fail(e, &doing, container))?;
        Ok(ExecOutput {
            exit_code: inspected.exit_code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}
