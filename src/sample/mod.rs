//! The built-in sample service that `up` deploys when no `--service-image` is given: a `Greeter` service and a
//! `Counter` virtual object, enough to prove that registration, invocation and keyed state work end to end.

use restate_sdk::prelude::*;

/// The answer `Greeter/greet` gives for `name`; the verification step compares against it.
pub fn greeting(name: &str) -> String {
    format!("Hello, {name}!")
}

pub struct Greeter;

#[restate_sdk::service]
impl Greeter {
    #[handler]
    async fn greet(&self, _ctx: Context<'_>, name: String) -> Result<String, HandlerError> {
        Ok(greeting(&name))
    }
}

pub struct Counter;

const TOTAL: &str = "total";

#[restate_sdk::object]
impl Counter {
    /// Adds `delta` to this key's total and returns the new total.
    #[handler]
    async fn add(&self, ctx: ObjectContext<'_>, delta: i64) -> Result<i64, HandlerError> {
        let total = ctx.get::<i64>(TOTAL).await?.unwrap_or(0);
        let total = total
            .checked_add(delta)
            .ok_or_else(|| TerminalError::new(format!("adding {delta} to {total} overflows a 64-bit integer")))?;
        ctx.set(TOTAL, total);
        Ok(total)
    }

    /// The current total; shared, so it runs concurrently with `add` and never blocks on it.
    #[handler]
    async fn get(&self, ctx: SharedObjectContext<'_>) -> Result<i64, HandlerError> {
        Ok(ctx.get::<i64>(TOTAL).await?.unwrap_or(0))
    }
}

/// The endpoint serving both.
pub fn endpoint() -> Endpoint {
    Endpoint::builder().bind(Greeter).bind(Counter).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_is_exact() {
        assert_eq!(greeting("restate-dev"), "Hello, restate-dev!");
    }
}
