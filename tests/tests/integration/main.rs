//! Every integration test, as one binary: the real functions against DynamoDB Local and the
//! SQS emulator (started once for the whole binary, on free loopback ports), the local stack,
//! the storefront in a browser, and the deployable build under `sam local`. One binary links
//! the workspace once instead of once per file, and one pair of services serves every test.
//!
//! Two kinds of test are `#[ignore]`d and run by module name (scripts/test does both):
//! - the browser tests: `cargo test -p catalog-tests --test integration -- --ignored storefront::`
//!   (and `storefront_fleet::`); they need the storefront built (scripts/setup) and Chromium;
//! - the Docker tests: `cargo test -p catalog-tests --test integration -- --ignored sam_local::`
//!   after scripts/sam-local and scripts/build-lambdas.

mod aws_consistency;
mod cache_handler;
mod chaos;
mod events;
mod hostile_input;
mod lambda_binaries;
mod listing_api;
mod local_stack;
mod merchandising;
mod openapi;
mod projector;
mod reconcile_delivery;
mod reconciler;
mod refresh_race;
mod revalidator;
mod revalidator_targets;
mod sam_local;
mod security;
mod storefront;
mod storefront_fleet;
mod storefront_opennext;
mod telemetry;
mod template;
