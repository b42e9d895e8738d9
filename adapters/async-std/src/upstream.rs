//! Dialling upstream servers. Which server comes next is proto's policy
//! (`switchyard_proto::Failover`); this module only opens TCP connections (the session's own
//! `Connect` deadline bounds a dial: no other timeout is added here).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;

use async_io::Async;
use switchyard_proto::UpstreamGroup;

/// A connection being established.
pub(crate) type Dial = Pin<Box<dyn Future<Output = io::Result<Async<TcpStream>>> + Send>>;

/// Opens a TCP connection to server `index` of `group`. An address that is not an IP literal
/// is resolved by async-std's resolver (off the executor threads).
pub(crate) fn dial(group: Arc<UpstreamGroup>, index: usize) -> Dial {
    Box::pin(async move {
        let server = &group.servers()[index];
        if let Ok(addr) = server.parse::<SocketAddr>() {
            return connect(addr).await;
        }
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for the upstream");
        for addr in async_std::net::ToSocketAddrs::to_socket_addrs(server.as_str()).await? {
            match connect(addr).await {
                Ok(socket) => return Ok(socket),
                Err(e) => last = e,
            }
        }
        Err(last)
    })
}

/// Connects and sets `TCP_NODELAY` (the session's writes are already coalesced).
async fn connect(addr: SocketAddr) -> io::Result<Async<TcpStream>> {
    let socket = Async::<TcpStream>::connect(addr).await?;
    socket.get_ref().set_nodelay(true)?;
    Ok(socket)
}
