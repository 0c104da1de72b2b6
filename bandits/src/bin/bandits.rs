//! `bandits`: the site's flags from a shell or a deploy script. See `bandits::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (stdin, mut stdout, mut stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let mut console = bandits::cli::Console {
        stdin: &mut stdin.lock(),
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    runtime.block_on(bandits::cli::run(std::env::args_os(), &mut console))
}
