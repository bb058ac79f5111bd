-- Run once by the postgres image when its data volume is new: one database per service
-- (each service owns its database; they share only the server).
CREATE DATABASE referral;
CREATE DATABASE directory;
CREATE DATABASE notifier;
CREATE DATABASE auth;
