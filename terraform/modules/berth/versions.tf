terraform {
  required_version = ">= 1.5"
  # hashicorp/aws only: the module generates no key material (berth makes
  # its token key itself, secrets.tf), so it needs no tls or random provider.
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60"
    }
  }
}
