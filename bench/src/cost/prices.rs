//! AWS's published on-demand prices, US East (N. Virginia), as published when this was
//! written; check the pages before relying on them.

/// DynamoDB on-demand, after the November 2024 reduction
/// (<https://aws.amazon.com/dynamodb/pricing/on-demand/>): per million write request units
/// (1 KB each) and read request units (4 KB strongly consistent, 8 KB eventually).
pub const DYNAMODB_WRITE_MILLION: f64 = 0.625;
pub const DYNAMODB_READ_MILLION: f64 = 0.125;
/// Lambda on arm64 (<https://aws.amazon.com/lambda/pricing/>): per GB-second (first 7.5
/// billion a month) and per million requests. Stream triggers' GetRecords calls are free.
pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
pub const LAMBDA_REQUEST_MILLION: f64 = 0.20;
/// SQS standard queues (<https://aws.amazon.com/sqs/pricing/>), per million requests (each
/// 64 KB of payload is one request) past the first million a month.
pub const SQS_REQUEST_MILLION: f64 = 0.40;
/// API Gateway HTTP APIs (<https://aws.amazon.com/api-gateway/pricing/>), per million
/// requests, first 300 million a month.
pub const HTTP_API_REQUEST_MILLION: f64 = 1.00;
