//! `restate-dev render`: every object `up` installs, in apply order.

use crate::cli::RenderArgs;
use crate::commands::Ctx;
use crate::error::Result;

pub fn run(_ctx: &Ctx, _args: &RenderArgs) -> Result<()> {
    Err(crate::error::Error::failed("not built yet"))
}
