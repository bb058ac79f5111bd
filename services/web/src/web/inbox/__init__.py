"""The CBO inbox: a signed-in organization's incoming referrals, and moving them along."""
