//! `sweep serve`: a web page that follows the studies of a database while they run
//! (crates/serve). Binds to loopback unless told otherwise; beyond loopback every request
//! needs the access token printed at start.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The results database (read only; the runner keeps writing it).
    #[arg(long, default_value = "results/sweep.db")]
    pub db: PathBuf,
    /// The address to listen on. Anything but loopback (127.0.0.1, ::1) requires a token.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// 0 picks a free port.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Require this access token (default beyond loopback: a random one, printed). Also read
    /// from SWEEP_SERVE_TOKEN.
    #[arg(long, env = "SWEEP_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Connections served at once; more are answered 503.
    #[arg(long, default_value_t = 64)]
    pub max_connections: usize,
}

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    if let Some(t) = &args.token {
        if t.len() < 16
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            anyhow::bail!("--token: expected at least 16 characters from A-Z a-z 0-9 - _");
        }
    }
    let mut opts = serve::Options::new(args.db.clone());
    opts.bind = args.bind;
    opts.port = args.port;
    opts.token = args.token.clone();
    opts.max_connections = args.max_connections;
    serve::run(opts, |s| {
        // stdout: the address (scripts and tests read it); the rest is for people.
        println!("{}", s.url);
        if s.token.is_some() {
            eprintln!(
                "listening on {} beyond loopback: every request needs the token in the address above",
                s.addr
            );
        } else {
            eprintln!(
                "listening on {} (loopback only). From another machine: ssh -L {port}:localhost:{port} THIS_HOST, then open http://localhost:{port}/",
                s.addr,
                port = s.addr.port()
            );
        }
    })?;
    Ok(())
}
