//! The kube-proxy stand-in: for each Service port that selects emulated pods, a TCP
//! listener on `clusterIP:port` that forwards each connection to a ready pod's
//! `podIP:targetPort` (round robin). Service ClusterIPs are loopback addresses in the
//! harness, so the listener really serves the Service's address.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerPort, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::probes::resolve_port;

/// An emulated pod as the proxy sees it.
#[derive(Debug, Clone)]
pub struct Backend {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub ip: Ipv4Addr,
    pub ready: bool,
    pub ports: Vec<ContainerPort>,
}

/// Where one Service port sends its traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub service: String,
    pub namespace: String,
    pub selector: BTreeMap<String, String>,
    pub target_port: IntOrString,
}

impl Route {
    fn selects(&self, backend: &Backend) -> bool {
        backend.namespace == self.namespace && self.selector.iter().all(|(k, v)| backend.labels.get(k) == Some(v))
    }
}

/// The routes of the Services that select at least one of `backends`, keyed by
/// `clusterIP:port`. Services without a selector, headless Services and non-TCP ports are
/// left alone (whatever else serves those addresses keeps them).
pub fn routes(services: &[Arc<Service>], backends: &[Backend]) -> HashMap<SocketAddr, Route> {
    let mut routes = HashMap::new();
    for svc in services {
        let (Some(spec), Some(namespace), Some(name)) = (&svc.spec, &svc.metadata.namespace, &svc.metadata.name) else {
            continue;
        };
        let Some(selector) = spec.selector.clone().filter(|s| !s.is_empty()) else { continue };
        let Some(ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else { continue };
        for port in spec.ports.iter().flatten() {
            if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
                continue;
            }
            let Ok(service_port) = u16::try_from(port.port) else { continue };
            let route = Route {
                service: format!("{namespace}/{name}"),
                namespace: namespace.clone(),
                selector: selector.clone(),
                target_port: port.target_port.clone().unwrap_or(IntOrString::Int(port.port)),
            };
            if backends.iter().any(|b| route.selects(b)) {
                routes.insert(SocketAddr::from((ip, service_port)), route);
            }
        }
    }
    routes
}

struct Listener {
    route: Arc<RwLock<Route>>,
    task: JoinHandle<()>,
}

/// The running listeners and the pods they forward to.
#[derive(Default)]
pub struct Proxies {
    listeners: HashMap<SocketAddr, Listener>,
    backends: Arc<RwLock<Vec<Backend>>>,
}

impl Proxies {
    pub fn set_backends(&self, backends: Vec<Backend>) {
        *self.backends.write().expect("backends lock") = backends;
    }

    /// Starts, updates and stops listeners to match `routes`.
    pub fn sync(&mut self, routes: HashMap<SocketAddr, Route>) {
        self.listeners.retain(|addr, listener| {
            let keep = routes.contains_key(addr);
            if !keep {
                tracing::info!(%addr, service = %listener.route.read().expect("route lock").service, "stop forwarding");
                listener.task.abort();
            }
            keep
        });
        for (addr, route) in routes {
            if let Some(listener) = self.listeners.get(&addr) {
                let mut current = listener.route.write().expect("route lock");
                if *current != route {
                    *current = route;
                }
                continue;
            }
            tracing::info!(%addr, service = %route.service, target = ?route.target_port, "forwarding");
            let route = Arc::new(RwLock::new(route));
            let task = tokio::spawn(serve(addr, route.clone(), self.backends.clone()));
            self.listeners.insert(addr, Listener { route, task });
        }
    }

    pub fn stop_all(&mut self) {
        self.sync(HashMap::new());
    }
}

async fn serve(addr: SocketAddr, route: Arc<RwLock<Route>>, backends: Arc<RwLock<Vec<Backend>>>) {
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(%addr, "cannot listen for the Service (retrying in 2s): {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let next = AtomicUsize::new(0);
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%addr, "accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let target = {
            let route = route.read().expect("route lock");
            let backends = backends.read().expect("backends lock");
            let ready: Vec<SocketAddr> = backends
                .iter()
                .filter(|b| b.ready && route.selects(b))
                .filter_map(|b| resolve_port(&route.target_port, &b.ports).map(|p| SocketAddr::from((b.ip, p))))
                .collect();
            (!ready.is_empty()).then(|| ready[next.fetch_add(1, Ordering::Relaxed) % ready.len()])
        };
        match target {
            Some(target) => {
                tokio::spawn(forward(client, target));
            }
            // As kube-proxy rejects connections to a Service without ready endpoints.
            None => tracing::debug!(%addr, %peer, "no ready pod; connection closed"),
        }
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr) {
    match TcpStream::connect(target).await {
        Ok(mut upstream) => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
        Err(e) => tracing::debug!(%target, "connecting to the pod: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use kube::api::ObjectMeta;

    fn service(selector: &[(&str, &str)], target: Option<IntOrString>) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta {
                name: Some("est-pkiplane".into()),
                namespace: Some("pki".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("127.192.0.10".into()),
                selector: Some(selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ports: Some(vec![ServicePort { port: 8443, target_port: target, ..Default::default() }]),
                ..Default::default()
            }),
            status: None,
        })
    }

    fn backend(labels: &[(&str, &str)]) -> Backend {
        Backend {
            namespace: "pki".into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ip: Ipv4Addr::new(127, 64, 0, 2),
            ready: true,
            ports: vec![],
        }
    }

    #[test]
    fn only_services_selecting_emulated_pods_are_routed() {
        let pods = [backend(&[("app", "est"), ("tier", "x")])];
        let selecting = routes(&[service(&[("app", "est")], None)], &pods);
        let addr: SocketAddr = "127.192.0.10:8443".parse().unwrap();
        assert_eq!(selecting[&addr].target_port, IntOrString::Int(8443));
        assert!(routes(&[service(&[("app", "ca")], None)], &pods).is_empty());
        assert!(routes(&[service(&[], None)], &pods).is_empty());
    }
}
