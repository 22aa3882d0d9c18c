output "ecr_token_policy_arn" {
  description = "ARN of the minimal ecr:GetAuthorizationToken policy."
  value       = aws_iam_policy.ecr_token.arn
}

output "user_name" {
  description = "The IAM user (identity_type = \"user\")."
  value       = one(aws_iam_user.daemon[*].name)
}

output "user_arn" {
  description = "ARN of the IAM user (identity_type = \"user\")."
  value       = one(aws_iam_user.daemon[*].arn)
}

output "access_key_id" {
  description = "AWS_ACCESS_KEY_ID (create_access_key = true)."
  value       = one(aws_iam_access_key.daemon[*].id)
}

output "secret_access_key" {
  description = "AWS_SECRET_ACCESS_KEY (create_access_key = true). terraform output -raw secret_access_key"
  value       = one(aws_iam_access_key.daemon[*].secret)
  sensitive   = true
}

output "role_arn" {
  description = "ARN of the daemon's role (identity_type = \"role\"): the eks.amazonaws.com/role-arn annotation for IRSA."
  value       = one(aws_iam_role.daemon[*].arn)
}

output "instance_profile_name" {
  description = "Instance profile for the Rancher hosts (create_instance_profile = true)."
  value       = one(aws_iam_instance_profile.daemon[*].name)
}

output "cross_account_role_arn" {
  description = "AWS_ROLE_ARN for the daemon (create_cross_account_role = true)."
  value       = one(aws_iam_role.cross_account[*].arn)
}

output "external_id" {
  description = "AWS_ROLE_EXTERNAL_ID for the daemon."
  value       = var.external_id
  sensitive   = true
}
