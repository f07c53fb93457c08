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
  description = "Prefix of the SQS queue names (BERTH_AWS_QUEUE_PREFIX): the queues are <prefix>events, <prefix>webhooks and <prefix>jobs, each with <prefix><queue>-dlq. Default: \"<name>-\"."
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
  description = "Visibility timeout per queue (events, webhooks, jobs), in seconds. A queue left out gets six times the longest timeout of the worker functions consuming it (AWS's advice for Lambda event sources), and at least 30 s. It must not be shorter than the timeout of any function consuming the queue."
  type        = map(number)
  default     = {}
  validation {
    condition     = alltrue([for q, t in var.queue_visibility_timeout_seconds : contains(["events", "webhooks", "jobs"], q) && t >= 0 && t <= 43200])
    error_message = "queue_visibility_timeout_seconds: keys events, webhooks or jobs; values 0..43200 (12 hours)."
  }
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
    Worker functions, by name: each is the one worker binary (functions/worker, zip <lambda_zip_dir>/worker.zip) deployed as
    the function <name>-worker-<key>, consuming one queue (BERTH_WORKER_QUEUE) through an SQS event source mapping that
    reports partial batch failures. Kinds of work with different needs get their own queue, so their settings differ
    (a webhook takes milliseconds, a job up to about a minute). The first worker of the jobs queue (by key) also gets the
    EventBridge Scheduler tick every minute (schedules.tf). An empty map deploys no workers (run `berth worker` elsewhere).
  EOT
  type = map(object({
    queue           = string
    batch_size      = optional(number, 10)
    memory_mb       = optional(number, 512)
    timeout_seconds = optional(number, 30)
    max_concurrency = optional(number, 10)
  }))
  default = {
    events   = { queue = "events" }
    webhooks = { queue = "webhooks", timeout_seconds = 30 }
    jobs     = { queue = "jobs", timeout_seconds = 120, memory_mb = 1024 }
  }
  validation {
    condition     = alltrue([for w in values(var.workers) : contains(["events", "webhooks", "jobs"], w.queue)])
    error_message = "workers: each queue is \"events\", \"webhooks\" or \"jobs\"."
  }
  validation {
    condition     = alltrue([for k, w in var.workers : can(regex("^[a-z][a-z0-9-]{0,15}$", k)) && w.max_concurrency >= 2 && w.timeout_seconds <= 900])
    error_message = "workers: keys are 1-16 of a-z 0-9 - starting with a letter; max_concurrency is at least 2 (SQS event sources); timeout_seconds at most 900."
  }
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
  description = "ARN of an existing Secrets Manager secret holding the Ed25519 PKCS#8 PEM that signs registry tokens (BERTH_AUTH_TOKEN_KEY). Default (null): no secret and no BERTH_AUTH_TOKEN_KEY; berth makes the key itself on first start and keeps it in the DynamoDB table (a create-only write, so concurrent first starts agree on one key)."
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

variable "emulator" {
  description = <<-EOT
    Deploying to an AWS emulator (moto server) for a test, not to AWS. Leaves out only what moto cannot do: the bucket
    policy (its statement denies requests without TLS, and moto evaluates aws:SecureTransport as false even over TLS, so
    it would deny every S3 call) and the dead-letter queues' redrive allow policies (moto never finishes creating them;
    the source queues' redrive policies work without). main.tf lists them too. Never set it for a real deployment.
  EOT
  type        = bool
  default     = false
}
