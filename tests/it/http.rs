//! A tiny HTTP/1.1 server on 127.0.0.1:0 for download tests: serves one body or a tree of files by path, or fails
//! the way real servers and networks do (404, a body cut short), and keeps the paths it was asked for.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub enum Mode {
    /// 200 with these bytes.
    Serve(Arc<Vec<u8>>),
    /// 200 with the file at the request's path (`/dists/…/Packages` → key `dists/…/Packages`), 404 for others.
    Files(Arc<BTreeMap<String, Vec<u8>>>),
    /// 404 Not Found.
    NotFound,
    /// Promises the whole length in Content-Length, sends the first `sent` bytes, then closes.
    Truncate { body: Arc<Vec<u8>>, sent: usize },
}

pub struct Server {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    requests: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let requests = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (mode, requests, paths, stop) =
                (mode.clone(), requests.clone(), paths.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let mode = mode.lock().unwrap().clone();
                    let (requests, paths) = (requests.clone(), paths.clone());
                    std::thread::spawn(move || answer(stream, &mode, &requests, &paths));
                }
            })
        };
        Server {
            addr,
            mode,
            requests,
            paths,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Requests answered so far (any mode).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The paths asked for so far, in order (`/dists/bookworm-debug/Release`).
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut stream: TcpStream, mode: &Mode, requests: &AtomicUsize, paths: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return; // the wake-up connection, or a client that gave up
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    // `GET /path HTTP/1.1`
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    paths.lock().unwrap().push(path.clone());
    let not_found = &b"no such file\n"[..];
    let (status, body, sent) = match mode {
        Mode::Serve(body) => ("200 OK", body.as_slice(), body.len()),
        Mode::Files(files) => match files.get(path.trim_start_matches('/')) {
            Some(body) => ("200 OK", body.as_slice(), body.len()),
            None => ("404 Not Found", not_found, not_found.len()),
        },
        Mode::NotFound => ("404 Not Found", not_found, not_found.len()),
        Mode::Truncate { body, sent } => ("200 OK", body.as_slice(), *sent),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body[..sent.min(body.len())]);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// A URL on 127.0.0.1 where nothing listens: a port that was bound, then released.
pub fn refused_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/{path}")
}
