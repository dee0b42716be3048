//! The `cluster` scenario: three controllers sharing one registry through a
//! local etcd, against one memory-store controller in the same run. It
//! reports what the cluster store costs: etcd writes per registration (and
//! etcd's own put rate as the reference), heartbeat and route throughput on an
//! etcd-store controller relative to the memory store, etcd writes while every
//! worker heartbeats, and what a `kill -9` of a controller does to routes and
//! ownership.

#[cfg(not(feature = "etcd"))]
pub fn cluster(_: &super::target::Bench) -> anyhow::Result<super::row::Row> {
    anyhow::bail!("the cluster scenario needs the etcd store: build with --features etcd")
}

#[cfg(feature = "etcd")]
pub use with_etcd::{cluster, etcd_controllers};

#[cfg(feature = "etcd")]
mod with_etcd {
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result};
    use crank_controller::cluster::etcd_client;
    use crank_controller::cluster::{connect, ClusterSettings};
    use crank_fleet::etcd::{Etcd, EtcdConfig};
    use crank_proto::wire::WorkerDetail;

    use super::super::calls::{heartbeat_calls, route_calls};
    use super::super::flags::Scenario;
    use super::super::load::{client, Until};
    use super::super::row::Row;
    use super::super::scenario::{measured, register_workers, row};
    use super::super::target::{free_port, Bench, Target};
    use crate::error::flat;

    /// An etcd client for counting revisions and the reference put rate.
    async fn etcd(bench: &Bench, endpoint: &str) -> Result<etcd_client::Client> {
        let dir = bench.cert_dir();
        let settings = ClusterSettings {
            endpoints: vec![endpoint.to_owned()],
            ca: dir.join("ca.crt"),
            cert: dir.join("admin.crt"),
            key: dir.join("admin.key"),
            prefix: "/bench".into(),
            controller_id: "bench".into(),
            controller_url: String::new(),
            session_ttl: Duration::from_secs(5),
        };
        connect::connect(&settings).await.map_err(flat)
    }

    async fn revision(client: &mut etcd_client::Client) -> Result<i64> {
        let status = client.status().await.context("etcd status")?;
        Ok(status.header().map_or(0, |h| h.revision()))
    }

    /// The owner a controller shows for `worker_id`.
    async fn owner(bench: &Bench, target: &Target, worker_id: &str) -> Option<String> {
        let url = format!("{}/workers/{worker_id}", target.url);
        let mut answer = client(target.tls.clone(), 1).get(&url).send().await.ok()?;
        answer
            .json::<WorkerDetail>()
            .await
            .ok()?
            .owner
            .filter(|_| bench.flags.workers > 0)
    }

    /// Three controllers on the etcd at `endpoint`, their keys under
    /// `prefix`, their logs named `name-0`…`name-2`.
    pub fn etcd_controllers(
        bench: &Bench,
        endpoint: &str,
        prefix: &str,
        name: &str,
    ) -> Result<Vec<Target>> {
        let dir = bench.cert_dir().to_string_lossy().into_owned();
        (0..3)
            .map(|i| {
                let port = free_port()?;
                let args = [
                    "controller",
                    "--port",
                    &port.to_string(),
                    "--cert-dir",
                    &dir,
                    "--store",
                    "etcd",
                    "--etcd-endpoints",
                    endpoint,
                    "--etcd-prefix",
                    prefix,
                ];
                bench.start(&format!("{name}-{i}"), &args, port)
            })
            .collect()
    }

    pub fn cluster(bench: &Bench) -> Result<Row> {
        let flags = &bench.flags;
        let until = Until::Elapsed(flags.duration);
        let data = tempfile::tempdir().context("cannot make etcd's data directory")?;
        let store = bench.block_on(Etcd::start(EtcdConfig::in_dir(
            "crank-bench",
            bench.cert_dir(),
            data.path(),
        )))?;
        let endpoint = store.client_url().to_owned();
        let controllers = etcd_controllers(bench, &endpoint, "/crank", "cluster-controller")?;
        let memory = bench.controller()?;
        let mut store = bench.block_on(etcd(bench, &endpoint))?;
        let workers = flags.workers;
        let caps = (1, flags.capabilities);

        // Registrations through one controller: etcd writes each costs.
        let before = bench.block_on(revision(&mut store))?;
        let started = Instant::now();
        register_workers(bench, &controllers[0], "cl", (0, workers), caps)?;
        let registered_in = started.elapsed();
        // Batched writes land shortly after the answers: wait until they have.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut after = bench.block_on(revision(&mut store))?;
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = bench.block_on(revision(&mut store))?;
            if now == after || Instant::now() > deadline {
                break;
            }
            after = now;
        }
        let writes_per_registration = (after - before) as f64 / workers as f64;
        register_workers(bench, &memory, "cl", (0, workers), caps)?;

        // Heartbeats stay local: throughput against the memory store, and
        // etcd's writes meanwhile.
        let beats = heartbeat_calls("cl", workers);
        let before = bench.block_on(revision(&mut store))?;
        let (on_etcd, cpu) = measured(&controllers[0], || {
            Ok(bench.load(&controllers[0], until, beats.clone()))
        })?;
        let writes_while_beating =
            (bench.block_on(revision(&mut store))? - before) as f64 / on_etcd.elapsed.as_secs_f64();
        let on_memory = bench.load(&memory, until, beats);
        let routes = route_calls(flags.capabilities);
        let routes_etcd = bench.load(&controllers[0], until, routes.clone());
        let routes_memory = bench.load(&memory, until, routes.clone());

        // kill -9 the controller that owns every worker: routes through the
        // survivors, and the time until its workers have a new owner.
        let dead = bench
            .block_on(owner(bench, &controllers[1], "cl-0"))
            .unwrap_or_default();
        controllers[0].kill()?;
        let killed = Instant::now();
        let survivor = controllers[2].url.clone();
        let tls = controllers[2].tls.clone();
        let route_load = std::thread::spawn({
            let (connections, threads) = (flags.connections, flags.threads);
            move || {
                super::super::load::run_load(
                    &survivor,
                    tls,
                    connections,
                    threads,
                    until,
                    false,
                    routes,
                )
            }
        });
        let samples = [0, workers / 2, workers - 1].map(|i| format!("cl-{i}"));
        let mut owned_after = None;
        while killed.elapsed() < Duration::from_secs(30) {
            let moved = bench.block_on(async {
                for id in &samples {
                    match owner(bench, &controllers[1], id).await {
                        Some(owner) if owner != dead => {}
                        _ => return false,
                    }
                }
                true
            });
            if moved {
                owned_after = Some(killed.elapsed().as_secs_f64());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let during_failover = route_load.join().expect("the route load ends");

        // etcd's own sequential put rate on this machine, for reference.
        let puts = 1000;
        let put_rate = bench.block_on(async {
            let started = Instant::now();
            for i in 0..puts {
                store
                    .put(format!("/bench/reference/{i}"), "x", None)
                    .await
                    .context("etcd put")?;
            }
            Ok::<_, anyhow::Error>(f64::from(puts) / started.elapsed().as_secs_f64())
        })?;

        Ok(Row {
            workers: Some(workers as u64),
            cluster_registrations_per_s: Some(workers as f64 / registered_in.as_secs_f64()),
            etcd_writes_per_registration: Some(writes_per_registration),
            etcd_put_rate_reference: Some(put_rate),
            heartbeat_ratio_to_memory: Some(
                on_etcd.throughput() / on_memory.throughput().max(1e-9),
            ),
            route_ratio_to_memory: Some(
                routes_etcd.throughput() / routes_memory.throughput().max(1e-9),
            ),
            etcd_writes_per_s_while_heartbeating: Some(writes_while_beating),
            failover_owned_after_s: owned_after,
            failover_failed_routes: Some(during_failover.errors),
            ..row(Scenario::Cluster, &on_etcd, &controllers[1], cpu)
        })
    }
}
