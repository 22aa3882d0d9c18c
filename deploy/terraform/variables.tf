variable "aws_region" {
  description = "Region for the AWS provider (IAM is global; this is only where the API calls go)."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name of the IAM user / role / policies."
  type        = string
  default     = "rancher-ecr-credentials"
}

variable "path" {
  description = "IAM path for the created user, roles and policies."
  type        = string
  default     = "/"
}

variable "tags" {
  description = "Tags for every taggable resource."
  type        = map(string)
  default     = {}
}

variable "identity_type" {
  description = "The daemon's own identity: \"user\" (static access keys) or \"role\" (instance profile, IRSA, or any trusted principal)."
  type        = string
  default     = "role"

  validation {
    condition     = contains(["user", "role"], var.identity_type)
    error_message = "identity_type must be \"user\" or \"role\"."
  }
}

variable "create_access_key" {
  description = "identity_type = \"user\" only: also create an access key. Its secret ends up in the Terraform state; prefer creating it out of band."
  type        = bool
  default     = false
}

variable "role_trusted_services" {
  description = "identity_type = \"role\": AWS services that may assume the role (e.g. ec2.amazonaws.com for Rancher 1.x hosts, ecs-tasks.amazonaws.com)."
  type        = list(string)
  default     = ["ec2.amazonaws.com"]
}

variable "role_trusted_principal_arns" {
  description = "identity_type = \"role\": IAM principals (roles, users, accounts) that may assume the role."
  type        = list(string)
  default     = []
}

variable "create_instance_profile" {
  description = "identity_type = \"role\": also create an EC2 instance profile for the role."
  type        = bool
  default     = false
}

variable "irsa_oidc_provider_arn" {
  description = "identity_type = \"role\": ARN of the EKS cluster's IAM OIDC provider, to trust the Kubernetes service account (IRSA). null: no IRSA trust."
  type        = string
  default     = null
}

variable "irsa_namespace" {
  description = "Namespace of the service account trusted for IRSA."
  type        = string
  default     = "rancher-ecr-credentials"
}

variable "irsa_service_account" {
  description = "Name of the service account trusted for IRSA."
  type        = string
  default     = "rancher-ecr-credentials"
}

variable "pinned_regions" {
  description = "Allow ecr:GetAuthorizationToken only in these regions (aws:RequestedRegion). Empty: any region."
  type        = list(string)
  default     = []
}

variable "create_cross_account_role" {
  description = "Create a role in the registry account (provider aws.registry) that the daemon assumes with an ExternalId."
  type        = bool
  default     = false
}

variable "cross_account_role_name" {
  description = "Name of the cross-account role. null: \"<name>-cross-account\"."
  type        = string
  default     = null
}

variable "cross_account_trusted_principal_arns" {
  description = "Principals allowed to assume the cross-account role. Empty: the identity created here."
  type        = list(string)
  default     = []
}

variable "external_id" {
  description = "sts:ExternalId required by the cross-account role's trust policy (AWS_ROLE_EXTERNAL_ID). Required with create_cross_account_role."
  type        = string
  default     = null
  sensitive   = true
}

variable "registry_account_provider_role_arn" {
  description = "A role Terraform assumes to manage the registry account (provider aws.registry). null: the default provider's account."
  type        = string
  default     = null
}

variable "max_session_duration" {
  description = "Maximum session duration of the created roles, in seconds (3600..43200)."
  type        = number
  default     = 3600
}
