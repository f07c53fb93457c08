variable "name" {
  description = "Name of the deployment: prefix of every resource (function names, roles, log groups). Lower case letters, digits and hyphens."
  type        = string
  default     = "berth"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name: 3-32 of a-z 0-9 -, starting with a letter."
  }
}

variable "bucket_name" {
  description = "S3 bucket for blob bytes (BERTH_AWS_BUCKET). Default: \"<name>-blobs-<account id>\"."
  type        = string
  default     = null
}

variable "table_name" {
  description = "DynamoDB table for metadata (BERTH_AWS_TABLE). Default: the deployment name."
  type        = string
  default     = null
}

variable "queue_prefix" {
  description = "Prefix of the SQS queue names (BERTH_AWS_QUEUE_PREFIX): the queues are <prefix>events and <prefix>jobs, each with <prefix><queue>-dlq. Default: \"<name>-\"."
  type        = string
  default     = null
}

variable "s3_versioning" {
  description = "Keep S3 object versions (an overwritten or deleted blob stays recoverable for noncurrent_version_days)."
  type        = bool
  default     = true
}

variable "noncurrent_version_days" {
  description = "Days a noncurrent object version is kept when versioning is on."
  type        = number
  default     = 30
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which S3 aborts an unfinished multipart upload (berth upload sessions expire after 7 days)."
  type        = number
  default     = 7
}

variable "table_deletion_protection" {
  description = "DynamoDB deletion protection on the metadata table."
  type        = bool
  default     = true
}

variable "max_receive_count" {
  description = "Deliveries of a queue message before SQS moves it to the queue's dead-letter queue (berth's queue.max_attempts; keep them equal)."
  type        = number
  default     = 5
}

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the events and jobs queues. `berth migrate` sets 30 s, so keep 30 unless migrate runs no more; worker function timeouts must not exceed it."
  type        = number
  default     = 30
}

variable "lambda_zip_dir" {
  description = "Folder holding <function>.zip for every function (scripts/package-lambdas writes dist/lambda)."
  type        = string
}

variable "lambda_architecture" {
  description = "Instruction set of the function zips: arm64 (cargo-lambda cross-build, the default) or x86_64 (what scripts/package-lambdas builds without cargo-lambda on an x86_64 machine). Must match the zips."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture: arm64 or x86_64."
  }
}

variable "api_memory_mb" {
  description = "Memory of the api function (MiB); Lambda gives CPU in proportion."
  type        = number
  default     = 1024
}

variable "api_timeout_seconds" {
  description = "Timeout of the api function. A direct-upload completion reads the blob back to hash it (about 100 MB/s), so big blobs need time."
  type        = number
  default     = 300
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function (null: share the account's pool)."
  type        = number
  default     = null
}

variable "workers" {
  description = <<-EOT
    Worker functions, by name (the binary functions/<name>, zip <lambda_zip_dir>/<name>.zip), each fed by one queue through an
    SQS event source mapping that reports partial batch failures. None exist yet; add them as they land, e.g.
    { events = { queue = "events" }, jobs = { queue = "jobs", timeout_seconds = 25 } }.
  EOT
  type = map(object({
    queue           = string
    batch_size      = optional(number, 10)
    memory_mb       = optional(number, 512)
    timeout_seconds = optional(number, 25)
    max_concurrency = optional(number, 10)
  }))
  default = {}
  validation {
    condition     = alltrue([for w in values(var.workers) : contains(["events", "jobs"], w.queue)])
    error_message = "workers: each queue is \"events\" or \"jobs\"."
  }
}

variable "schedules" {
  description = <<-EOT
    EventBridge Scheduler schedules, by name, each sending a job message to the jobs queue (GC, retention, scheduled
    replication, audit purge), e.g. { gc = { expression = "cron(0 3 * * ? *)", job = "gc" } }. `payload` is merged into the
    message { "kind": <job>, ... }.
  EOT
  type = map(object({
    expression = string
    job        = string
    payload    = optional(map(string), {})
    timezone   = optional(string, "UTC")
  }))
  default = {}
}

variable "api_exposure" {
  description = "How the api function is reached: \"function_url\" (a Lambda function URL, request bodies up to 6 MB) or \"http_api\" (API Gateway HTTP API, optional custom domain, 30 s integration timeout)."
  type        = string
  default     = "function_url"
  validation {
    condition     = contains(["function_url", "http_api"], var.api_exposure)
    error_message = "api_exposure: function_url or http_api."
  }
}

variable "custom_domain" {
  description = "Custom domain of the HTTP API (api_exposure = \"http_api\"): the name, an ACM certificate for it in this region, and optionally a Route 53 zone to create the alias record in."
  type = object({
    domain_name     = string
    certificate_arn = string
    zone_id         = optional(string)
  })
  default = null
}

variable "token_key_secret_arn" {
  description = "ARN of an existing Secrets Manager secret holding the Ed25519 PKCS#8 PEM that signs registry tokens (BERTH_AUTH_TOKEN_KEY). Default: the module generates one and keeps it in a new secret."
  type        = string
  default     = null
}

variable "extra_environment" {
  description = "More BERTH_* settings for every function and the upload host (e.g. BERTH_AUTH_TOKEN_TTL_SECS)."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of every log group."
  type        = number
  default     = 365
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified by the alarms (DLQ depth, function errors, upload host health)."
  type        = list(string)
  default     = []
}

variable "function_error_threshold" {
  description = "Errors of one function in 5 minutes that raise its alarm."
  type        = number
  default     = 1
}

variable "upload_host" {
  description = <<-EOT
    The optional upload host: the berth container image running `berth serve --role upload` on ECS Fargate behind an HTTPS
    load balancer, so that stock clients (docker, containerd) can push layers bigger than a Lambda request. Upload
    Locations handed out by the api function then point at it (server.upload_base_url). Needs a VPC with private subnets
    (for the tasks, with a route to S3/DynamoDB/SQS: NAT or VPC endpoints) and public subnets (for the load balancer), an
    ACM certificate and, for a stable URL, a domain name pointed at the load balancer.
  EOT
  type = object({
    enabled            = bool
    image              = optional(string, "")
    vpc_id             = optional(string, "")
    private_subnet_ids = optional(list(string), [])
    public_subnet_ids  = optional(list(string), [])
    certificate_arn    = optional(string, "")
    domain_name        = optional(string)
    desired_count      = optional(number, 2)
    cpu                = optional(number, 1024)
    memory_mb          = optional(number, 2048)
    ingress_cidrs      = optional(list(string), ["0.0.0.0/0"])
  })
  default = { enabled = false }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
