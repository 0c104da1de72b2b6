//! Where a command reads its answers and writes its output: the process's standard
//! streams in the `bandits` binary, buffers in a test.

use std::io::{BufRead, Write};

/// The standard input, output and error of one run of the command line.
///
/// ```
/// use bandits::cli::Console;
///
/// let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
/// let console = Console {
///     stdin: &mut std::io::empty(),
///     stdout: &mut stdout,
///     stderr: &mut stderr,
/// };
/// # drop(console);
/// ```
pub struct Console<'a> {
    /// Answers to questions (`flags delete` asks), and `flags import -`.
    pub stdin: &'a mut dyn BufRead,
    /// What a command reports: tables, JSON, what it changed.
    pub stdout: &'a mut dyn Write,
    /// Errors and questions.
    pub stderr: &'a mut dyn Write,
}
