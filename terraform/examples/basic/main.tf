# berth on AWS, the smallest complete deployment: the api function behind a
# function URL, the default workers (events, webhooks, jobs) and the
# scheduler tick, no upload host (so stock clients push layers only in
# chunks of at most ~6 MB, or through `berth push-blob`; see the README's
# Deploy section).
#
#   scripts/package-lambdas            # dist/lambda/api.zip and worker.zip
#   cd terraform/examples/basic
#   terraform init && terraform apply -var region=eu-west-1
#   # then, once: berth migrate --backend aws with the migrate_environment output

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60"
    }
  }
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Deployment name (prefix of every resource)."
  type        = string
  default     = "berth"
}

variable "lambda_architecture" {
  description = "arm64 for cargo-lambda builds; x86_64 for zips from scripts/package-lambdas without cargo-lambda on x86_64."
  type        = string
  default     = "arm64"
}

variable "emulator" {
  description = "Only for tests against an AWS emulator (scripts/terraform-apply-check): leaves out what moto cannot do. Never set it for AWS."
  type        = bool
  default     = false
}

provider "aws" {
  region = var.region
}

module "berth" {
  source              = "../../modules/berth"
  name                = var.name
  lambda_zip_dir      = "${path.root}/../../../dist/lambda"
  lambda_architecture = var.lambda_architecture
  emulator            = var.emulator
}

output "registry_url" {
  description = "The registry's URL."
  value       = module.berth.registry_url
}

output "migrate_environment" {
  description = "Environment for the one-off `berth migrate --backend aws` after apply."
  value       = module.berth.migrate_environment
}
