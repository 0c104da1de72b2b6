//! A TCP proxy in front of a database server, to pull its plug in tests: `close` stops
//! listening and cuts every connection (clients then find the port closed), `open`
//! listens on the same port again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A proxy on 127.0.0.1 forwarding to a target address.
pub struct Proxy {
    port: u16,
    target: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    /// Bumped by `close`: every connection opened before ends.
    generation: Arc<watch::Sender<u64>>,
}

impl Proxy {
    /// Starts forwarding a fresh local port to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port for the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let (generation, _) = watch::channel(0);
        let proxy = Proxy {
            port,
            target,
            accept: Mutex::new(None),
            generation: Arc::new(generation),
        };
        proxy.serve(listener);
        proxy
    }

    /// The local port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target;
        let generation = Arc::clone(&self.generation);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = generation.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        *self.accept.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// Stops listening (the port refuses connections) and cuts every open connection.
    pub async fn close(&self) {
        let task = self.accept.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// Listens on the same port again.
    pub async fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the proxy's port again");
        self.serve(listener);
    }
}

/// `url` (`postgres://user@host:port/db?...`) with its host and port replaced by
/// 127.0.0.1 and `port`.
pub fn through(url: &str, port: u16) -> String {
    let authority_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"));
    format!(
        "{}{}127.0.0.1:{port}{}",
        &url[..authority_start],
        user.unwrap_or_default(),
        &rest[authority_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::through;

    #[test]
    fn urls_are_pointed_at_the_proxy() {
        assert_eq!(
            through("postgres://postgres@127.0.0.1:5432/t1", 40000),
            "postgres://postgres@127.0.0.1:40000/t1"
        );
        assert_eq!(
            through("postgres://u:p@db.internal/t2?sslmode=disable", 1),
            "postgres://u:p@127.0.0.1:1/t2?sslmode=disable"
        );
    }
}
