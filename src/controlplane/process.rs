//! Child processes that cannot outlive the harness.
//!
//! Two mechanisms keep the control plane from leaking processes:
//! - [`Processes`] stops its children on drop: SIGTERM, a short grace period, then SIGKILL.
//! - Every child is started with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills it when its
//!   parent goes away without running destructors (a `static` that is never dropped, `abort`,
//!   SIGKILL of the test binary). The kernel ties that signal to the *thread* that forked, not
//!   the process, so all children are spawned from one [`Spawner`] thread that lives exactly as
//!   long as the control plane — never from a test's own, possibly short-lived, thread.
//!
//! `std::process` is used rather than `tokio::process` so children depend on no async runtime:
//! a `#[tokio::test]` runtime ends with each test, the control plane may be shared by many.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::Error;

/// How long stopped components get to exit after SIGTERM before they are killed.
const GRACE_PERIOD: Duration = Duration::from_secs(5);
/// How many log lines an error about a component quotes.
const LOG_TAIL_LINES: usize = 40;

/// A component to start.
#[derive(Debug)]
pub(crate) struct Launch {
    /// Component name, for errors and logs.
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// File that receives stdout and stderr.
    pub log: PathBuf,
}

/// A request to the spawner thread, with the channel its answer goes back on.
struct SpawnRequest {
    launch: Launch,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// The dedicated thread every child of one control plane is forked from.
pub(crate) struct Spawner {
    requests: Option<mpsc::Sender<SpawnRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    /// Starts the spawner thread.
    pub fn start() -> Result<Self, Error> {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        let thread = thread::Builder::new()
            .name("controlplane-spawner".to_owned())
            .spawn(move || {
                for request in incoming {
                    // The requester may have given up; nothing else to tell.
                    let _ = request.reply.send(spawn_child(&request.launch));
                }
            })
            .map_err(Error::io("starting the control-plane spawner thread"))?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Starts `launch` from the spawner thread.
    ///
    /// Blocks the caller for the duration of a fork and exec, which is short enough to do on an
    /// async runtime's thread.
    pub fn spawn(&self, launch: Launch) -> Result<Process, Error> {
        let binary = launch.program.display().to_string();
        let spawn_error = |source| Error::Spawn {
            binary: binary.clone(),
            source,
        };
        let (reply, answer) = mpsc::channel();
        let name = launch.name;
        let log = launch.log.clone();
        let requests = self
            .requests
            .as_ref()
            .ok_or_else(|| spawn_error(io::Error::other("spawner already stopped")))?;
        requests
            .send(SpawnRequest { launch, reply })
            .map_err(|_| spawn_error(io::Error::other("spawner thread is gone")))?;
        let child = answer
            .recv()
            .map_err(|_| spawn_error(io::Error::other("spawner thread is gone")))?
            .map_err(spawn_error)?;
        tracing::debug!(component = name, pid = child.id(), "started");
        Ok(Process { name, child, log })
    }

    /// Ends the spawner thread. Its children must be stopped first: when the thread exits, the
    /// kernel SIGKILLs any that are left.
    pub fn stop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            // The thread only forwards spawn results; a panic there has nothing left to report.
            let _ = thread.join();
        }
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Forks and execs one component; runs on the spawner thread.
fn spawn_child(launch: &Launch) -> io::Result<Child> {
    let stdout = File::create(&launch.log)?;
    let stderr = stdout.try_clone()?;
    let parent = libc::pid_t::try_from(std::process::id()).map_err(io::Error::other)?;
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Its own process group: a Ctrl-C in the terminal reaches the harness, which then stops
        // the components in order, instead of reaching every component at once.
        .process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (prctl, getppid) without allocating.
    unsafe {
        command.pre_exec(move || die_with_parent(parent));
    }
    command.spawn()
}

/// Asks the kernel to SIGKILL this process when the thread that forked it exits.
///
/// Runs in the child between fork and exec. If the parent already exited before the request
/// took effect, the child has been re-parented and would never get the signal, so it gives up.
fn die_with_parent(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// A running component.
pub(crate) struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// The exit status, if the process has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// An error saying this component is not ready, quoting the end of its log.
    pub fn not_ready(&self, reason: String) -> Error {
        Error::NotReady {
            component: self.name.to_owned(),
            reason,
            log_tail: log_tail(&self.log),
        }
    }

    /// SIGTERM, up to [`GRACE_PERIOD`] to exit, then SIGKILL; reaps the process.
    fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let started = Instant::now();
        while self.is_running() && started.elapsed() < GRACE_PERIOD {
            thread::sleep(Duration::from_millis(10));
        }
        if self.is_running() {
            tracing::warn!(component = self.name, "did not exit after SIGTERM; killing");
            self.signal(libc::SIGKILL);
        }
        // Reaps the process; an error means it was reaped already.
        let _ = self.child.wait();
        tracing::debug!(component = self.name, elapsed = ?started.elapsed(), "stopped");
    }

    fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends `signal` if the process has not been reaped yet, so the pid cannot have been reused.
    fn signal(&mut self, signal: libc::c_int) {
        if !self.is_running() {
            return;
        }
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: kill takes plain integers; the pid is our unreaped child.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The last [`LOG_TAIL_LINES`] lines of a log file, or why it could not be read.
fn log_tail(path: &std::path::Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => tail_lines(&String::from_utf8_lossy(&bytes), LOG_TAIL_LINES),
        Err(err) => format!("(could not read {}: {err})", path.display()),
    }
}

fn tail_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// The components of one control plane, in start order.
#[derive(Default)]
pub(crate) struct Processes {
    running: Vec<Process>,
}

impl Processes {
    /// Takes ownership of a started process and lends it back for readiness checks.
    pub fn push(&mut self, process: Process) -> &mut Process {
        self.running.push(process);
        let last = self.running.len() - 1;
        &mut self.running[last]
    }

    /// Stops every process in reverse start order, each with SIGTERM, up to [`GRACE_PERIOD`] to
    /// exit, then SIGKILL; reaps each one. Idempotent.
    ///
    /// One at a time because each component holds connections to the one started before it:
    /// etcd stopping under a running API server keeps both waiting on each other.
    pub fn shutdown(&mut self) {
        let started = Instant::now();
        while let Some(process) = self.running.pop() {
            process.stop();
        }
        tracing::debug!(elapsed = ?started.elapsed(), "control plane stopped");
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines("a", 5), "a");
        assert_eq!(tail_lines("", 5), "");
    }

    fn sleeper(dir: &std::path::Path) -> Launch {
        Launch {
            name: "sleep",
            program: PathBuf::from("sleep"),
            args: vec!["30".to_owned()],
            log: dir.join("sleep.log"),
        }
    }

    #[test]
    fn shutdown_reaps_children() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = Spawner::start().unwrap();
        let mut processes = Processes::default();
        let pid = processes
            .push(spawner.spawn(sleeper(dir.path())).unwrap())
            .child
            .id();
        processes.shutdown();
        // SAFETY: signal 0 only checks existence.
        let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
        assert!(!alive, "child {pid} still exists");
    }

    #[test]
    fn children_die_with_the_spawner_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut spawner = Spawner::start().unwrap();
        let mut process = spawner.spawn(sleeper(dir.path())).unwrap();
        spawner.stop();
        let status = process.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn not_ready_quotes_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = Spawner::start().unwrap();
        let mut process = spawner
            .spawn(Launch {
                name: "echo",
                program: PathBuf::from("sh"),
                args: vec!["-c".to_owned(), "echo boom; exit 3".to_owned()],
                log: dir.path().join("echo.log"),
            })
            .unwrap();
        process.child.wait().unwrap();
        let message = process.not_ready("exited".to_owned()).to_string();
        assert!(
            message.contains("echo did not become ready: exited"),
            "{message}"
        );
        assert!(message.contains("boom"), "{message}");
    }
}
