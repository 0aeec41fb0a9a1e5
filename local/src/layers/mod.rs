//! Layers between the functions and DynamoDB Local that make it as weak as AWS's DynamoDB
//! ([`consistency`]: lagging indexes and replicas, held writes) or worse ([`faults`]:
//! throttling). The stack takes them as a list (`Options::layers`).

pub mod consistency;
pub mod faults;
