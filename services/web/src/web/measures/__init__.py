"""The loop metrics page for signed-in staff: referral-api's figures, read with the person's
own token."""
