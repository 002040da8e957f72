// eportal console behaviour
