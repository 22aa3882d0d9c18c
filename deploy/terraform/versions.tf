terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

# The account where the daemon's identity lives.
provider "aws" {
  region = var.aws_region
}

# The account that owns the ECR registries, for the optional cross-account
# role. Without registry_account_provider_role_arn it is the same account as
# the default provider (handy for tests); normally give a role that Terraform
# may assume in the registry account, or apply this module twice.
provider "aws" {
  alias  = "registry"
  region = var.aws_region

  dynamic "assume_role" {
    for_each = var.registry_account_provider_role_arn == null ? [] : [var.registry_account_provider_role_arn]
    content {
      role_arn = assume_role.value
    }
  }
}
