"""The clinician's side: a SMART EHR launch into the patient's context, finding help near the
patient, referring in three screens, and each referral's timeline."""
