//! `volguard serve` in process on 127.0.0.1: admission, mutation, TLS and client certificates, HTTP
//! behaviour, health and metrics, reloads, shutdown, and API-server faults (an in-process fake API server
//! for what the real one cannot produce).

mod common;

mod admission;
mod client_ca;
mod errors;
mod fake_apiserver;
mod goldens;
mod health;
mod http;
mod mutate;
mod reload;
mod router;
mod shutdown;
mod storage;
mod tls;
mod tls_keys;
