//! The `vecfmt` binary: the CLI of [`vecfmt_cli`].

fn main() -> std::process::ExitCode {
    vecfmt_cli::main_from(std::env::args_os())
}
