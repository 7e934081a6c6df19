//! The proving invocation of `up`: one call of a handler, bounded by the loop's timeout. A plain call that
//! times out knows nothing, while Restate knows why the handler fails; so the call is started with `send`, its
//! outcome awaited with `attach`, and if none comes in time the error carries Restate's record of the
//! invocation, which is then killed so that a failed `up` leaves nothing retrying.

use std::time::Duration;

use serde_json::Value;

use super::admin::InvocationState;
use super::http::seconds;
use super::{Admin, Ingress};
use crate::error::{Error, Kind, Result};

/// Lines of Restate's failure text quoted in an error: the message and the top of the handler's stack.
const FAILURE_LINES: usize = 4;

/// Calls `path` with `body` and returns its answer, or fails within about `bound` with what Restate knows.
pub async fn prove(admin: &Admin, ingress: &Ingress, path: &str, body: &str, bound: Duration) -> Result<Value> {
    let id = ingress.send(path, body).await?;
    let unanswered = match ingress.attach(&id, bound).await {
        Ok(Ok(answer)) => return Ok(answer),
        // An error as the answer is Restate's verdict (a terminal failure): the invocation is over.
        Ok(Err(e)) => return Err(rename(e, path, &id)),
        Err(e) => e,
    };
    let state = admin.invocation(&id).await;
    let mut error = unfinished(path, &id, bound, state.as_ref().ok().and_then(Option::as_ref));
    error = match state {
        Ok(Some(state)) => describe(error, &state),
        Ok(None) => error.detail("Restate has no record of it"),
        Err(e) => error.detail(format!("cannot read Restate's record of it: {}", e.message)),
    };
    if unanswered.kind != Kind::Timeout {
        error = error.detail(format!("waiting for it failed: {}", unanswered.message));
    }
    error = match admin.kill(&id).await {
        Ok(()) => error.detail(format!("killed invocation {id}, so that it does not retry forever")),
        Err(e) => error.detail(format!("could not kill invocation {id}: {}", e.message)),
    };
    Err(error.hint(
        "the handler keeps failing or does not finish: Restate's failure above says why, the service's logs say \
         more; a longer --timeout helps only a slow handler",
    ))
}

/// The error for a proof that did not complete in time. A recorded failure means the verification failed (exit 1,
/// as README.md says): the handler answered with an error, and Restate retries it forever. Without one, the
/// handler is only slow, or never ran: the bounded wait ran out (exit 4).
fn unfinished(path: &str, id: &str, bound: Duration, state: Option<&InvocationState>) -> Error {
    match state.and_then(|s| s.last_failure.as_ref()) {
        Some(_) => Error::failed(format!("{path} kept failing for {} (invocation {id})", seconds(bound))),
        None => Error::timeout(format!(
            "{path} did not complete within {} (invocation {id})",
            seconds(bound)
        )),
    }
}

/// Restate's record as detail lines: the status and attempts, then the last failure, quoted.
fn describe(mut error: Error, state: &InvocationState) -> Error {
    let attempts = state
        .retry_count
        .map(|n| format!(" after {n} attempts"))
        .unwrap_or_default();
    error = error.detail(format!("Restate's status for it: {}{attempts}", state.status));
    match &state.last_failure {
        Some(failure) => {
            let code = state
                .last_failure_error_code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let mut lines = failure.lines();
            error = error.detail(format!("Restate said{code}: {}", lines.next().unwrap_or_default()));
            for line in lines.take(FAILURE_LINES - 1) {
                error = error.detail(format!("| {}", line.trim()));
            }
            error
        }
        None => error.detail("Restate records no failure for it: the handler is still running"),
    }
}

/// The attach URL means little to a reader; the handler path and the invocation id say what failed.
fn rename(mut error: Error, path: &str, id: &str) -> Error {
    error.message = format!("{path} failed (invocation {id}): {}", error.message);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_quoted_with_its_code_and_the_top_of_the_stack() {
        let state = InvocationState {
            status: "backing-off".into(),
            retry_count: Some(4),
            last_failure: Some("[500 Internal] boom\nError: boom\n    at fail (svc.cjs:6)\n    at a\n    at b".into()),
            last_failure_error_code: Some("RT0007".into()),
        };
        let e = describe(Error::timeout("x"), &state);
        assert_eq!(
            e.details,
            [
                "Restate's status for it: backing-off after 4 attempts",
                "Restate said (RT0007): [500 Internal] boom",
                "| Error: boom",
                "| at fail (svc.cjs:6)",
                "| at a",
            ]
        );
        let running = InvocationState {
            status: "running".into(),
            retry_count: None,
            last_failure: None,
            last_failure_error_code: None,
        };
        let e = describe(Error::timeout("x"), &running);
        assert!(e.details[1].contains("still running"), "{:?}", e.details);
    }

    /// README.md: a failed verification exits 1, a bounded wait that ran out 4.
    #[test]
    fn a_handler_that_keeps_failing_is_a_failure_and_a_slow_one_a_timeout() {
        let bound = Duration::from_secs(10);
        let failing = InvocationState {
            status: "backing-off".into(),
            retry_count: Some(3),
            last_failure: Some("[500 Internal] boom".into()),
            last_failure_error_code: None,
        };
        let e = unfinished("Greeter/greet", "inv_1", bound, Some(&failing));
        assert_eq!((e.kind, e.exit_code()), (Kind::Failed, 1));
        assert!(e.message.contains("kept failing"), "{}", e.message);
        let slow = InvocationState {
            last_failure: None,
            ..failing
        };
        for state in [Some(&slow), None] {
            let e = unfinished("Greeter/greet", "inv_1", bound, state);
            assert_eq!((e.kind, e.exit_code()), (Kind::Timeout, 4));
        }
    }
}
