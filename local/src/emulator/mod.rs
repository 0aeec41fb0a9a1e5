//! What AWS runs around a Lambda function, emulated: the event source mappings of streams
//! ([`stream_mapping`] over [`streams`]) and queues ([`queue_mapping`]), EventBridge schedules
//! ([`schedule`]) and the HTTP API ([`http_api`], its events in [`apigw`]), each invoking a
//! [`function::Function`] and counting what it did ([`stats`]).

pub mod apigw;
pub mod function;
pub mod http_api;
pub mod queue_mapping;
pub mod schedule;
pub mod stats;
pub mod stream_mapping;
pub mod streams;
