//! Entry point: answers the docker CLI's metadata probe before anything else, then hands argv
//! to the library.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The docker CLI runs this on every `docker --help` and before every `docker trustacr`
    // call, with no timeout: no config, no runtime, no I/O beyond this one write.
    if docker_trustacr::plugin::is_metadata_request(&argv) {
        let mut out = std::io::stdout().lock();
        return match out
            .write_all(docker_trustacr::plugin::metadata_json().as_bytes())
            .and_then(|()| out.flush())
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    docker_trustacr::cli::run(argv)
}
